"""Serving the engines with Ray Serve (the `scale` extra): one deployment per capability, the
app as their front end. Nothing here is imported unless `--backend ray` or `zsstudio serve` is
asked for, and only `deployment`, `client`, `stops` and `config` import Ray.

    wire.py        what crosses between front end and replica: requests with their input
                   files as bytes, the streamed events, errors by kind (no Ray)
    deployment.py  EngineDeployment: one Serve deployment class around an Engine
    stops.py       StopBoard: Stop for long runs (keep the result so far) across processes
    client.py      RayStudio and RemoteEngine: the Studio and Engine the tabs use, on Serve
    config.py      serve.yaml: validate it with Ray's schema and deploy it (`zsstudio serve`)
"""

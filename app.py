"""Zero-Shot Studio: the web app. `python app.py --help` lists the flags."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import re
import sys
from collections.abc import Sequence

from engines import scratch

# before Gradio is imported: its uploads and cached examples go into this process's scratch
# folder, which no other app instance empties and the next start sweeps if this one is killed
os.environ.setdefault("GRADIO_TEMP_DIR", str(scratch.process_folder() / "gradio"))

import gradio as gr  # noqa: E402

from engines import __version__
from engines.capabilities import select
from engines.commands import add_studio_options, studio_from_args
from engines.errors import InputError
from engines.files import describe_os_error
from engines.interface import StudioInterface
from engines.studio import Studio, on_zero_gpu
from tabs import about, system
from tabs.common import model_runs
from tabs.login import LoginGuard, believe_forwarded_for, login_app_kwargs, trusted_proxies
from tabs.queue_limit import bound_queue
from tabs.running_calls import RUNS, SESSION_ENDED
from tabs.session_files import DELETE_CACHE, OUTPUTS
from tabs.uploads import explain_processing_errors, limit_image_decoding

HEADER = f"""\
# Zero-Shot Studio
Zero-shot generative methods from recent papers, one tab each, on public models.
Nothing is fine-tuned on your data; outputs come with the measurements taken on them and a
recipe that reproduces them (`zsstudio run` the recipe file). Version {__version__}.
"""

CSS = """
.zss-header h1 { margin-bottom: 0.2em; }
.zss-start-here p { margin: 0.3em 0; }
.zss-busy { padding: 0.2em 0.6em; border-radius: 6px; background: var(--color-accent-soft); }
.zss-pixelated img {
  image-rendering: pixelated;
  object-fit: contain !important;
  min-width: min(100%, 256px);
  min-height: 256px;
}
"""
THEME = gr.themes.Soft(primary_hue="indigo", secondary_hue="violet")
MAX_UPLOAD = "200mb"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
QUEUE_SIZE = 16
SESSION_CAPACITY = 100
"""Sessions whose state the server keeps (least recently used ones go first). Gradio keeps a
copy of every component's config per session, about 0.5 MB for this app, and each API call
without a session of its own starts one: at Gradio's default of 10,000 that is gigabytes."""


def build_demo(
    tabs: Sequence[str] | None = None,
    device: str | None = None,
    models: str | None = None,
    studio: StudioInterface | None = None,
) -> gr.Blocks:
    """The app: a header, one tab per built capability, About, and the System panel. `studio`
    may be a RayStudio (`--backend ray`): the tabs then run the engines on Ray Serve."""
    capabilities = select(list(tabs) if tabs else None)
    limit_image_decoding()
    studio = studio or Studio(device=device, models=models)
    if on_zero_gpu():
        studio.preload([cap.key for cap in capabilities])

    with gr.Blocks(title="Zero-Shot Studio", delete_cache=DELETE_CACHE) as demo:
        gr.Markdown(HEADER, elem_classes="zss-header")
        busy = system.busy_line()
        with gr.Tabs(), model_runs(studio.concurrent_runs):
            for capability in capabilities:
                with gr.Tab(capability.title, id=capability.key):
                    importlib.import_module(capability.tab_module).build(studio)
            with gr.Tab("About", id="about"):
                about.build(capabilities, studio.registry)
        system.build(studio, demo, busy)
        demo.unload(end_session)
    explain_processing_errors(demo)
    demo.queue()
    bound_queue(demo, 1 if on_zero_gpu() else QUEUE_SIZE)  # the status still answers when full
    demo.studio = studio
    return demo


def end_session(request: gr.Request) -> None:
    """The browser tab closed: its runs stop at their next step, and the files made for it go
    (others age out on DELETE_CACHE)."""
    RUNS.cancel(request.session_hash or "", reason=SESSION_ENDED)
    OUTPUTS.drop_session(request.session_hash or "")


def parse_auth(value: str | None) -> tuple[str, str] | None:
    if value is None:
        return None
    match = re.fullmatch(r"([^:]+):(.+)", value)
    if not match:
        raise InputError("--auth must be USER:PASS (both non-empty).")
    return match.group(1), match.group(2)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Serve Zero-Shot Studio.")
    parser.add_argument(
        "--host",
        default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        help="address to bind (default 127.0.0.1; Spaces sets GRADIO_SERVER_NAME)",
    )
    parser.add_argument("--port", type=int, default=None, help="port (default: Gradio's, 7860)")
    parser.add_argument("--share", action="store_true", help="make a public share link")
    parser.add_argument("--auth", default=None, metavar="USER:PASS", help="require a login")
    parser.add_argument(
        "--trusted-proxy",
        action="append",
        default=[],
        metavar="ADDR",
        help="a reverse proxy whose X-Forwarded-For is believed (an IP or network; repeatable). "
        "Without it the client is the connecting address.",
    )
    parser.add_argument(
        "--tabs", default=None, help="comma-separated capabilities to show (default: all built)"
    )
    add_studio_options(parser, device_default=None)
    return parser.parse_args(argv)


def launch_options(args: argparse.Namespace, auth: tuple[str, str] | None) -> dict:
    """`demo.launch` keywords for the parsed flags; a login is slowed down for guessers, keyed
    on the connecting address unless a trusted proxy reports another."""
    believe_forwarded_for(args.trusted_proxy)
    guard = LoginGuard(*auth) if auth else None
    return {
        "server_name": args.host,
        "server_port": args.port,
        "share": args.share,
        "auth": guard.check if guard else None,
        "app_kwargs": login_app_kwargs() if guard else None,
        "max_file_size": MAX_UPLOAD,
        "state_session_capacity": SESSION_CAPACITY,
        "theme": THEME,
        "css": CSS,
        "ssr_mode": False,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    scratch.sweep()  # what killed instances left
    try:
        auth = parse_auth(args.auth)
        try:
            trusted_proxies(args.trusted_proxy)
        except ValueError as err:
            raise InputError(str(err)) from None
        tabs = [t.strip() for t in args.tabs.split(",") if t.strip()] if args.tabs else None
        if args.device and args.device != "auto":
            from engines.device import choose_device

            choose_device(args.device)
        studio = studio_from_args(args)
        if tabs is None and args.backend == "ray":  # the capabilities the cluster serves
            tabs = studio.deployed() or None
        demo = build_demo(tabs=tabs, studio=studio)
    except InputError as err:
        print(f"app.py: error: {err}", file=sys.stderr)
        return 2
    try:
        demo.launch(**launch_options(args, auth))
    except OSError as err:  # the port is taken, or the address is not this machine's
        where = f"{args.host}:{args.port or 'a port from 7860'}"
        reason = describe_os_error(err).splitlines()[0]
        if reason.startswith("Cannot find empty port"):  # Gradio's words for a busy port
            reason = "the port is in use; choose another with --port"
        print(f"app.py: error: cannot serve on {where}: {reason}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

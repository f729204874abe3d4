"""`zsstudio eval`: each capability's paper protocol run on our engines, written as a report
(report.md, report.json, PNG plots) beside the papers' own figures."""

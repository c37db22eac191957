"""The web dashboard: a JSON API over the hourly rollups, a live SSE stream and a Chart.js page.

`python -m web` runs it; `web.app.create_app(config)` builds the same application for tests.
"""

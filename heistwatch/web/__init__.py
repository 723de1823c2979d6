"""The web UI: server-rendered pages (each with a JSON twin), cases, the actor graph and downloads."""

"""The local twin's dashboard: the calls placed, searchable, and each call's path through Connect,
the SIP transfer and the Kore bot (Starlette + Jinja2, rendered on the server, no build step).

- `app`: the pages and their routes; `ladder`: a call's SIP messages as a ladder diagram.
"""

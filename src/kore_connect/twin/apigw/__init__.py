"""A local API Gateway (REST API): the routes and TOKEN authorizers `template.yaml` describes,
served in front of the same Lambda handlers that run in AWS.

- `policy`: what API Gateway does with an authorizer's answer (pure);
- `proxy`: an HTTP request as a Lambda proxy event, and the proxy response back as HTTP (pure);
- `responses`: API Gateway's own answers (401, 403, 413, 502, 504...) and their headers;
- `gateway`: one request from start to end: route, authorize (with the cache), integrate (pure
  logic over injected functions);
- `app`: the ASGI application (Starlette) and its lifespan: the worker processes of each function;
- `openapi`: the OpenAPI description of the served API.
"""

"""gateway_svc: the public API of mp3mesh, over REST (Starlette) and gRPC (port 50050).

One core, two faces:

* `core` — the business logic both faces call (`uploads`, `downloads`, `outbox`, `views`,
  `auth_client`, `credentials`); errors are gRPC status codes (`errors.ApiError`).
* REST — `http_rules` reads GatewayService's `google.api.http` rules, `json_mapping` maps HTTP
  onto request messages and back, `rest_shim` turns the rules into routes, `rest_media` holds
  the streaming upload/download routes (`multipart_stream`, `sniff`, `ranges`), `rest_errors`
  renders every error as JSON, `openapi` (+ `proto_comments`) documents it all, and
  `rest_app` assembles the Starlette app.
* gRPC — `grpc_face` serves GatewayService itself.
* `readiness`, `config`, `server` (`serve()` starts everything) and `__main__`.
"""

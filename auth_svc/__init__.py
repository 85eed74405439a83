"""auth_svc: accounts in MySQL, argon2id password hashes, HS256 JWTs, over gRPC."""

"""Plumbing the mesh's services share: configuration, gRPC bootstrap, storage, queues.

It knows no service: services meet only through the contracts in `gen/` and this package.
"""

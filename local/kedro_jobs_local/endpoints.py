"""Where `make dev` finds each AWS service (an endpoint the user set, else the embedded moto),
and whether a local port is free or a local URL answers."""

from __future__ import annotations

import os
import socket
import urllib.error
import urllib.request

# The services the local stack uses; any without an endpoint of its own goes to moto.
SERVICES = ("dynamodb", "sqs", "s3")


def external_endpoint() -> str | None:
    """An endpoint the user already set for every service (LocalStack, say)."""
    return os.environ.get("AWS_ENDPOINT_URL") or None


def needs_moto() -> bool:
    """Whether a service of the stack has no endpoint of its own (then moto serves it)."""
    if external_endpoint():
        return False
    return not all(os.environ.get(f"AWS_ENDPOINT_URL_{s.upper()}") for s in SERVICES)


def endpoint_of(service: str) -> str:
    return (
        os.environ.get(f"AWS_ENDPOINT_URL_{service.upper()}")
        or os.environ.get("AWS_ENDPOINT_URL")
        or "(AWS)"
    )


def port_taken(host: str, port: int) -> bool:
    """Someone listens there. (Connections of a previous run still closing do not count:
    the servers bind with SO_REUSEADDR, and so does this check.)"""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - our own loopback URL
            return True
    except urllib.error.HTTPError:
        return True  # it answered (a 503 is an answer: the API is up)
    except OSError:
        return False

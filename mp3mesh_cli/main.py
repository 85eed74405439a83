"""mp3mesh: convert videos to MP3 with an mp3mesh server, from the command line.

    mp3mesh signup EMAIL            create an account (password prompted, or on stdin)
    mp3mesh login EMAIL             log in; the token is kept in ~/.config/mp3mesh (0600)
    mp3mesh convert FILE...         upload, wait, download FILE's MP3 next to it
    mp3mesh jobs                    list your jobs
    mp3mesh download JOB [-o PATH]  download a finished job's MP3
    mp3mesh trace JOB [--jaeger F]  show the job's trace (from the local span file)

The server is $MP3MESH_URL or --url (default http://127.0.0.1:8080).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path

import httpx
from tqdm import tqdm

from mp3mesh_cli import store
from mp3mesh_cli.client import ApiClient, ApiError
from mp3mesh_cli.traces import load_trace, render_tree, to_jaeger

DEFAULT_URL = "http://127.0.0.1:8080"


def _password(confirm: bool) -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if confirm and getpass.getpass("Repeat password: ") != first:
        raise SystemExit("error: the passwords differ")
    return first


def _client(args: argparse.Namespace, *, authenticated: bool = True) -> ApiClient:
    session = store.load()
    if not authenticated:
        return ApiClient(args.url or (session.base_url if session else DEFAULT_URL))
    if session is None:
        raise SystemExit("error: not logged in: run `mp3mesh login EMAIL` first")
    return ApiClient(args.url or session.base_url, session.access_token)


def cmd_signup(args: argparse.Namespace) -> int:
    user = _client(args, authenticated=False).signup(args.email, _password(confirm=True))
    print(f"signed up {user['email']} (user {user['user_id']}); now: mp3mesh login {args.email}")
    return 0


def cmd_login(args: argparse.Namespace) -> int:
    client = _client(args, authenticated=False)
    token = client.login(args.email, _password(confirm=False))
    path = store.save(
        store.Session(client.base_url, args.email, token.access_token, token.expires_at)
    )
    print(f"logged in as {args.email} until {token.expires_at} (token in {path})")
    return 0


def _convert_one(client: ApiClient, path: Path, bitrate: int | None) -> bool:
    with tqdm(
        total=path.stat().st_size,
        unit="B",
        unit_scale=True,
        desc=path.name,
        file=sys.stderr,
        leave=False,
    ) as bar:

        def progress(sent: int, _total: int) -> None:
            bar.update(sent - bar.n)

        accepted = client.upload(path, bitrate_kbps=bitrate, progress=progress)
    job_id = accepted["job_id"]
    print(f"{path.name}: uploaded, job {job_id}; converting ...", file=sys.stderr)
    job = client.wait(job_id)
    if job["state"] != "JOB_STATE_DONE":
        failure = job.get("failure", {})
        print(
            f"{path.name}: FAILED ({failure.get('reason', 'unknown')}): "
            f"{failure.get('message', '')}"
        )
        return False
    target = client.download(job_id, path.with_suffix(".mp3"))
    print(f"{path.name}: {target} ({float(job.get('mp3_duration_s', 0)):.1f} s)")
    return True


def cmd_convert(args: argparse.Namespace) -> int:
    client = _client(args)
    ok = True
    for name in args.files:
        path = Path(name)
        if not path.is_file():
            print(f"{name}: no such file", file=sys.stderr)
            ok = False
            continue
        try:
            ok = _convert_one(client, path, args.bitrate) and ok
        except ApiError as exc:
            print(f"{name}: {exc}")
            ok = False
    return 0 if ok else 1


def cmd_jobs(args: argparse.Namespace) -> int:
    client = _client(args)
    page = client.jobs(page_size=args.limit)
    for job in page.get("jobs", []):
        state = str(job["state"]).removeprefix("JOB_STATE_")
        reason = job.get("failure", {}).get("message", "")
        print(
            f"{job['job_id']}  {state:<10} {job.get('create_time', ''):<27} "
            f"{job.get('filename', '')}  {reason}".rstrip()
        )
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    target = _client(args).download(args.job, Path(args.output))
    print(target)
    return 0


def _default_span_file() -> Path:
    if os.environ.get("MP3MESH_TRACE_FILE"):
        return Path(os.environ["MP3MESH_TRACE_FILE"])
    return Path.cwd() / ".data" / "traces" / "spans.jsonl"


def cmd_trace(args: argparse.Namespace) -> int:
    job = _client(args).job(args.job)
    trace_id = job.get("trace_id", "")
    if not trace_id:
        raise SystemExit(f"error: job {args.job} has no trace id")
    span_file = Path(args.spans) if args.spans else _default_span_file()
    if not span_file.exists():
        raise SystemExit(
            f"error: no span file at {span_file} (use --spans, or look the trace "
            f"up in Jaeger: trace id {trace_id})"
        )
    spans = load_trace(span_file, trace_id)
    if not spans:
        raise SystemExit(f"error: no spans of trace {trace_id} in {span_file} yet")
    print(
        f"trace {trace_id}: {len(spans)} spans, services "
        f"{', '.join(sorted({span['service'] for span in spans}))}"
    )
    print(render_tree(spans))
    if args.jaeger:
        Path(args.jaeger).write_text(json.dumps(to_jaeger(spans, trace_id), indent=1))
        print(f"Jaeger JSON written to {args.jaeger} (Jaeger UI: Search > JSON File)")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="mp3mesh", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    top.add_argument(
        "--url",
        default=os.environ.get("MP3MESH_URL"),
        help=f"server base URL (default: the login's, else {DEFAULT_URL})",
    )
    commands = top.add_subparsers(dest="command", required=True)
    signup = commands.add_parser("signup", help="create an account")
    signup.add_argument("email")
    signup.set_defaults(run=cmd_signup)
    login = commands.add_parser("login", help="log in and keep the token")
    login.add_argument("email")
    login.set_defaults(run=cmd_login)
    convert = commands.add_parser("convert", help="convert files to MP3")
    convert.add_argument("files", nargs="+")
    convert.add_argument("--bitrate", type=int, help="kb/s, 96-320 (default 192)")
    convert.set_defaults(run=cmd_convert)
    jobs = commands.add_parser("jobs", help="list your jobs, newest first")
    jobs.add_argument("--limit", type=int, default=20)
    jobs.set_defaults(run=cmd_jobs)
    download = commands.add_parser("download", help="download a job's MP3")
    download.add_argument("job")
    download.add_argument("-o", "--output", default=".", help="file or folder (default: .)")
    download.set_defaults(run=cmd_download)
    trace = commands.add_parser("trace", help="print a job's trace")
    trace.add_argument("job")
    trace.add_argument(
        "--spans", help="span file (default: $MP3MESH_TRACE_FILE or ./.data/traces/spans.jsonl)"
    )
    trace.add_argument("--jaeger", help="also write the trace as Jaeger UI JSON to this file")
    trace.set_defaults(run=cmd_trace)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.run(args))
    except ApiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except httpx.TransportError as exc:
        print(
            f"error: cannot reach the server ({type(exc).__name__}: {exc}); is it up?",
            file=sys.stderr,
        )
        return 1
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

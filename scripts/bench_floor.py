"""skyform against the floor (issue 16): boto3 making the same requests against the same moto.

Run through scripts/bench-floor, which builds the release binary and finds moto. Two cases:

- noop-plan: a no-op `skyform plan` of 124 resources (IAM roles, instance profiles, policies,
  users with access keys, a VPC with subnets and security groups) against boto3 making the
  reads that plan makes (the --stats list), on as many threads as `--parallelism`.
- apply-roles: `skyform apply --parallelism 10` of 300 independent roles against boto3 sending
  the same 300 CreateRole calls on 10 threads, with a fixed latency added to every request.

Every request goes through a small threaded proxy in front of moto that adds the latency and
counts the requests by action, so both sides are counted the same way. skyform is timed as a
user sees it (the whole process); the floor from its first request to its last (its Python
start, boto3 import and client creation are left out, which only makes the floor harder).
"""

import argparse
import concurrent.futures
import http.client
import http.server
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter

import boto3
import botocore.config


class Proxy:
    """Forwards every request to moto after `delay` seconds and counts it by action."""

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.delay = 0.0
        self.calls = Counter()
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_):
                pass

            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with proxy.lock:
                    proxy.calls[action_of(self.path, self.headers, body)] += 1
                if proxy.delay:
                    time.sleep(proxy.delay)
                # One upstream connection per proxy thread (keep-alive to moto).
                conn = getattr(self.server.local, "conn", None)
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port)
                    self.server.local.conn = conn
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                except (http.client.HTTPException, OSError):
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port)
                    self.server.local.conn = conn
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

        class Server(http.server.ThreadingHTTPServer):
            # A deep accept queue: the default (5) can drop connections of a burst of
            # concurrent requests, which the SDKs then retry, and the retries would count.
            request_queue_size = 128
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.local = threading.local()
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def take_calls(self):
        with self.lock:
            calls, self.calls = self.calls, Counter()
        return calls


def action_of(path, headers, body):
    target = headers.get("X-Amz-Target")
    if target:
        return target.rsplit(".", 1)[-1]
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
    if "Action" in query:
        return query["Action"][0]
    form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
    if "Action" in form:
        return form["Action"][0]
    return f"{headers.get('Host', '')} {path}"


def reset_moto(port):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/moto-api/reset", method="POST")
    urllib.request.urlopen(req).read()


ASSUME = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)
POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
    }
)

# The no-op plan's shape: 52 + 52 + 4 + 4 + 4 + 1 + 3 + 4 = 124 resources.
ROLES, POLICIES, USERS, SUBNETS, GROUPS = 52, 4, 4, 3, 4


def estate_config():
    out = []
    for i in range(ROLES):
        out.append(
            f'resource "aws_iam_role" "r{i}" {{\n  name = "floor-role-{i}"\n'
            f"  assume_role_policy = {json.dumps(ASSUME)}\n}}\n"
            f'resource "aws_iam_instance_profile" "p{i}" {{\n  name = "floor-profile-{i}"\n'
            f"  role = aws_iam_role.r{i}.name\n}}\n"
        )
    for i in range(POLICIES):
        out.append(
            f'resource "aws_iam_policy" "pol{i}" {{\n  name = "floor-policy-{i}"\n'
            f"  policy = {json.dumps(POLICY)}\n}}\n"
        )
    for i in range(USERS):
        out.append(
            f'resource "aws_iam_user" "u{i}" {{\n  name = "floor-user-{i}"\n}}\n'
            f'resource "aws_iam_access_key" "k{i}" {{\n  user = aws_iam_user.u{i}.name\n}}\n'
        )
    out.append('resource "aws_vpc" "v" {\n  cidr_block = "10.70.0.0/16"\n}\n')
    for i in range(SUBNETS):
        out.append(
            f'resource "aws_subnet" "s{i}" {{\n  vpc_id = aws_vpc.v.id\n'
            f'  cidr_block = "10.70.{i}.0/24"\n}}\n'
        )
    for i in range(GROUPS):
        out.append(
            f'resource "aws_security_group" "g{i}" {{\n  name = "floor-sg-{i}"\n'
            f"  vpc_id = aws_vpc.v.id\n}}\n"
        )
    return "".join(out)


def roles_config(n):
    return "".join(
        f'resource "aws_iam_role" "r{i}" {{\n  name = "floor-create-{i}"\n'
        f"  assume_role_policy = {json.dumps(ASSUME)}\n}}\n"
        for i in range(n)
    )


def clients(endpoint, threads):
    cfg = botocore.config.Config(
        max_pool_connections=max(threads, 10), retries={"mode": "standard"}
    )
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    iam = session.client("iam", endpoint_url=endpoint, config=cfg)
    ec2 = session.client("ec2", endpoint_url=endpoint, config=cfg)
    return iam, ec2


def floor_noop_reads(iam, ec2, threads, vpc_id, policy_arns, user_names):
    """The reads of skyform's no-op plan (see its --stats), on `threads` threads."""

    def paginate(client, op, key, **kw):
        return [x for page in client.get_paginator(op).paginate(**kw) for x in page[key]]

    lineage = [{"Name": "tag-key", "Values": ["skyform:lineage"]}]
    jobs = [
        lambda: paginate(
            iam,
            "get_account_authorization_details",
            "RoleDetailList",
            Filter=["Role", "User", "LocalManagedPolicy"],
        ),
        lambda: paginate(iam, "list_roles", "Roles"),
        lambda: paginate(iam, "list_instance_profiles", "InstanceProfiles"),
        lambda: ec2.describe_vpcs(Filters=lineage),
        lambda: ec2.describe_subnets(Filters=lineage),
        lambda: ec2.describe_security_groups(Filters=lineage),
        lambda: ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute="enableDnsSupport"),
        lambda: ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute="enableDnsHostnames"),
    ]
    jobs += [lambda a=a: iam.list_policy_tags(PolicyArn=a) for a in policy_arns]
    jobs += [lambda u=u: iam.list_access_keys(UserName=u) for u in user_names]
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        for f in [pool.submit(j) for j in jobs]:
            f.result()
    return time.perf_counter() - started


def floor_creates(iam, threads, n, prefix):
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        futures = [
            pool.submit(iam.create_role, RoleName=f"{prefix}-{i}", AssumeRolePolicyDocument=ASSUME)
            for i in range(n)
        ]
        for f in futures:
            f.result()
    return time.perf_counter() - started


def run_skyform(binary, workdir, args, env):
    """Runs skyform; its output, wall time, and CPU time (user + system) as the third line."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    out = subprocess.run(
        [binary, *args], cwd=workdir, env=env, capture_output=True, text=True, check=False
    )
    took = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    out.stderr += f"\n  time cpu: {cpu:.3f} s\n"
    return out, took


def stats_phases(stderr):
    """The `time PHASE: S s` lines of a --stats report, as one line."""
    lines = [line.strip() for line in stderr.splitlines()]
    return ", ".join(
        line.removeprefix("time ").replace(" s", "s")
        for line in lines
        if line.startswith("time ") or line.startswith("requests: ")
    )


def stats_requests(stderr):
    got = Counter()
    for line in stderr.splitlines():
        line = line.strip()
        if line.startswith("request "):
            what, n = line[len("request ") :].rsplit(": ", 1)
            got[what.split(" ", 1)[1]] += int(n)
    return got


def fail(msg):
    print(f"bench-floor: {msg}", file=sys.stderr)
    sys.exit(1)


def time_skyform(args, proxy, env, work, command, before_each):
    """Runs `skyform COMMAND` (with --stats) `args.runs` times: the wall times, the requests of
    the last run as the proxy counted them, and each run's --stats phases."""
    times, calls, phases = [], None, []
    for _ in range(args.runs):
        before_each()
        proxy.take_calls()
        out, took = run_skyform(args.skyform, work, command, env)
        if out.returncode != 0:
            fail(f"skyform {' '.join(command)} exited {out.returncode}:\n{out.stdout}{out.stderr}")
        times.append(took)
        phases.append(stats_phases(out.stderr))
        calls = proxy.take_calls()
        if stats_requests(out.stderr) != calls:
            fail(f"--stats and the proxy disagree: {out.stderr} vs {dict(calls)}")
    return times, calls, phases


def case_noop_plan(args, proxy, env, endpoint):
    work = tempfile.mkdtemp(prefix="bench-floor-plan-")
    try:
        with open(os.path.join(work, "main.sky.hcl"), "w", encoding="utf-8") as f:
            f.write(estate_config())
        reset_moto(args.moto_port)
        proxy.delay = 0.0
        out, _ = run_skyform(args.skyform, work, ["apply", "--auto-approve"], env)
        if out.returncode != 0:
            fail(f"apply of the estate failed:\n{out.stdout}{out.stderr}")
        proxy.delay = args.plan_latency
        plan = ["plan", "--detailed-exitcode", "--stats", "--parallelism", str(args.parallelism)]
        sky_times, sky_calls, phases = time_skyform(args, proxy, env, work, plan, lambda: None)

        iam, ec2 = clients(endpoint, args.parallelism)
        proxy.delay = 0.0
        vpc_id = ec2.describe_vpcs(Filters=[{"Name": "cidr", "Values": ["10.70.0.0/16"]}])[
            "Vpcs"
        ][0]["VpcId"]
        policies = [
            p["Arn"]
            for p in iam.list_policies(Scope="Local")["Policies"]
            if p["PolicyName"].startswith("floor-policy-")
        ]
        users = [f"floor-user-{i}" for i in range(USERS)]
        proxy.take_calls()
        proxy.delay = args.plan_latency
        floor_times, floor_calls = [], None
        for _ in range(args.runs):
            floor_times.append(floor_noop_reads(iam, ec2, args.parallelism, vpc_id, policies, users))
            floor_calls = proxy.take_calls()
        return sky_times, sky_calls, floor_times, floor_calls, phases
    finally:
        shutil.rmtree(work, ignore_errors=True)


def case_apply_roles(args, proxy, env, endpoint):
    work = tempfile.mkdtemp(prefix="bench-floor-apply-")
    try:
        with open(os.path.join(work, "main.sky.hcl"), "w", encoding="utf-8") as f:
            f.write(roles_config(args.roles))
        proxy.delay = args.apply_latency
        apply = ["apply", "--auto-approve", "--stats", "--parallelism", str(args.parallelism)]

        def fresh():
            reset_moto(args.moto_port)
            shutil.rmtree(os.path.join(work, ".skyform"), ignore_errors=True)

        sky_times, sky_calls, phases = time_skyform(args, proxy, env, work, apply, fresh)

        iam, _ = clients(endpoint, args.parallelism)
        floor_times, floor_calls = [], None
        for _ in range(args.runs):
            reset_moto(args.moto_port)
            proxy.take_calls()
            floor_times.append(floor_creates(iam, args.parallelism, args.roles, "floor-create"))
            floor_calls = proxy.take_calls()
        return sky_times, sky_calls, floor_times, floor_calls, phases
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skyform", required=True)
    ap.add_argument("--moto-port", type=int, required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--parallelism", type=int, default=10)
    ap.add_argument("--roles", type=int, default=300)
    ap.add_argument("--apply-latency", type=float, default=0.020)
    ap.add_argument("--plan-latency", type=float, default=0.0)
    ap.add_argument("--case", choices=["noop-plan", "apply-roles", "all"], default="all")
    args = ap.parse_args()

    proxy = Proxy(args.moto_port)
    endpoint = f"http://127.0.0.1:{proxy.port}"
    env = dict(os.environ)
    env.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
    )
    env.pop("AWS_PROFILE", None)

    cases = []
    if args.case in ("noop-plan", "all"):
        name = f"no-op plan, 124 resources, +{args.plan_latency * 1000:.0f} ms"
        cases.append((name, 1.3, case_noop_plan(args, proxy, env, endpoint)))
    if args.case in ("apply-roles", "all"):
        name = f"apply {args.roles} roles, +{args.apply_latency * 1000:.0f} ms"
        cases.append((name, 1.2, case_apply_roles(args, proxy, env, endpoint)))

    print(
        f"release build, {os.cpu_count()} cores, median of {args.runs} runs, "
        f"--parallelism {args.parallelism} (the floor: as many boto3 threads)"
    )
    print(
        f"{'case':<36} {'skyform':>9} {'floor':>9} {'ratio':>6} {'goal':>6} "
        f"{'req skyform':>12} {'req floor':>10}"
    )
    ok = True
    for name, goal, (sky_t, sky_c, floor_t, floor_c, phases) in cases:
        s, f = statistics.median(sky_t), statistics.median(floor_t)
        ratio = s / f
        met = "met" if ratio <= goal else "MISSED"
        print(
            f"{name:<36} {s:>8.3f}s {f:>8.3f}s {ratio:>6.2f} {'≤' + str(goal):>6} "
            f"{sum(sky_c.values()):>12} {sum(floor_c.values()):>10}  {met}"
        )
        # skyform may send the floor's requests plus the identity, nothing more.
        extra = sky_c - floor_c
        extra.pop("GetCallerIdentity", None)
        if extra:
            ok = False
            print(f"  skyform sent more than the floor: {dict(extra)}")
        print(f"  skyform requests: {dict(sorted(sky_c.items()))}")
        print(f"  floor requests:   {dict(sorted(floor_c.items()))}")
        print(f"  skyform runs: {' '.join(f'{t:.3f}' for t in sky_t)}")
        print(f"  floor runs:   {' '.join(f'{t:.3f}' for t in floor_t)}")
        for p in phases:
            print(f"  skyform --stats: {p}")
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()

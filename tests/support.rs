//! Test support: a temporary project, the `skyform` command, a moto server per test, and a
//! recording proxy that counts the AWS calls skyform makes (so "no write call" is checked
//! from outside skyform) and can stop the world at a chosen write, the kill point.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub(crate) struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    pub(crate) fn new(files: &[(&str, &str)]) -> Project {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = Project { dir };
        for (name, text) in files {
            p.write(name, text);
        }
        p
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn write(&self, name: &str, text: &str) {
        std::fs::write(self.dir.path().join(name), text).expect("write fixture");
    }

    /// `skyform -C <project>` with no AWS reachable (a closed port), for tests that must not
    /// touch AWS.
    pub(crate) fn offline(&self) -> assert_cmd::Command {
        let mut c = assert_cmd::Command::cargo_bin("skyform").expect("binary");
        c.arg("-C")
            .arg(self.path())
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .env_remove("AWS_PROFILE");
        dummy_credentials(&mut c);
        c
    }
}

fn dummy_credentials(c: &mut assert_cmd::Command) {
    c.env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("NO_COLOR", "1");
}

/// Whether AWS tests may be skipped: only with an explicit `SKYFORM_SKIP_AWS_TESTS=1`.
pub(crate) fn skip_aws() -> bool {
    std::env::var("SKYFORM_SKIP_AWS_TESTS").is_ok_and(|v| v == "1")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A moto server of its own for one test, with a recording proxy in front of it.
pub(crate) struct Moto {
    child: Child,
    port: u16,
    pub direct: String,
    pub url: String,
    pub calls: Arc<Mutex<Vec<String>>>,
    pub faults: Arc<Faults>,
}

/// A test's own answer to a request: given its action and its form body, the HTTP status and
/// XML body to answer with instead of moto's, or `None` to forward it. How tests serve what
/// moto does not implement (placement groups) or make AWS answer what moto never does
/// (capacity errors).
pub(crate) type Answer = Arc<dyn Fn(&str, &str) -> Option<(u16, String)> + Send + Sync>;

/// The answer hook of the proxy (`Moto::answer_with`); none by default.
#[derive(Default)]
pub(crate) struct Answerer(Mutex<Option<Answer>>);

impl std::fmt::Debug for Answerer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = self.0.lock().is_ok_and(|a| a.is_some());
        write!(f, "Answerer({})", if set { "set" } else { "none" })
    }
}

impl Answerer {
    fn answer(&self, action: &str, body: &str) -> Option<(u16, String)> {
        let hook = self.0.lock().expect("answer").clone()?;
        hook(action, body)
    }
}

/// What the proxy does to requests besides recording them.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    /// Requests the test answers itself; they are recorded in `calls` and gated like any other,
    /// but never reach moto.
    pub answer: Answerer,
    /// Hold the answer to the n-th write call since the last `resume` (1-based; 0 = never):
    /// it reaches AWS, but the caller never hears back, as when a process dies mid-call.
    /// That write is the kill point: from then on nothing more reaches AWS until `resume`.
    pub hold_at: AtomicUsize,
    /// Set once the held write has reached AWS and its answer is being held.
    pub held: AtomicBool,
    gate: Mutex<Gate>,
    /// Signalled whenever a forward to moto finishes, for `quiesce`.
    settled: Condvar,
    /// Per mille of requests answered with a throttling error, and of connections cut before
    /// the request is forwarded.
    pub throttle_per_mille: AtomicUsize,
    pub cut_per_mille: AtomicUsize,
    /// Per mille of requests answered with HTTP 503.
    pub unavailable_per_mille: AtomicUsize,
    /// Milliseconds each write waits before it is forwarded (a slow AWS).
    pub write_delay_ms: AtomicUsize,
    /// Counters of connections accepted, of what was injected, and of requests the gate kept
    /// from moto.
    pub accepted: AtomicUsize,
    pub throttled: AtomicUsize,
    pub cut: AtomicUsize,
    pub unavailable: AtomicUsize,
    pub refused: AtomicUsize,
    rng: Mutex<u64>,
}

/// Which requests may still reach moto.
///
/// The race this closes: the proxy serves each connection on its own thread, and a client
/// with several calls in flight has several connections. When the k-th write was held and the
/// test killed skyform, other threads could still be holding requests they had read but not
/// yet forwarded (or were about to read from the dead client's socket, whose bytes outlive
/// the process), and moto could still be working on forwards it had not answered. Those
/// landed *after* the kill, and could land after the next run had already looked for them:
/// the old test's k=10 failure (`EntityAlreadyExists` for a role that was never adopted) is
/// that, a `CreateRole` of the dead run arriving between the converge run's search for the role
/// and its own `CreateRole`. No real crash does that: a request reaches AWS before the process
/// dies or never. So the decision to forward
/// is taken under one lock together with the decision to hold: after the kill point nothing is
/// admitted, what was admitted before it is counted until its forward ends (`quiesce` waits
/// for that), and `resume` opens a new generation so that a connection of the killed process
/// can never be admitted again.
#[derive(Debug, Default)]
struct Gate {
    /// Bumped by `resume`; a connection may forward only in the generation it was accepted in.
    generation: u64,
    /// Writes admitted in this generation: the numbering `hold_at` refers to.
    writes: usize,
    /// Set at the kill point.
    closed: bool,
    /// The action held at the kill point.
    held_action: Option<String>,
    /// Admitted requests whose forward to moto has not finished.
    in_flight: usize,
}

/// What the gate decided for one request.
enum Admission {
    /// Close the connection without forwarding.
    Refuse,
    /// Forward; `hold` keeps the answer from the caller.
    Forward { hold: bool },
}

/// An admitted request's place in `Gate::in_flight`, given back however the forward ends.
struct InFlight<'a>(&'a Faults);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut gate = self
            .0
            .gate
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        gate.in_flight -= 1;
        self.0.settled.notify_all();
    }
}

impl Faults {
    /// A deterministic pseudo-random number in 0..1000 (xorshift).
    fn roll(&self) -> usize {
        let mut s = self.rng.lock().expect("rng");
        if *s == 0 {
            *s = 0x9E37_79B9_7F4A_7C15;
        }
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        (*s % 1000) as usize
    }

    fn generation(&self) -> u64 {
        self.gate.lock().expect("gate").generation
    }

    /// Decides, atomically with every other connection, whether a request reaches moto.
    fn admit(&self, generation: u64, action: Option<&str>) -> Admission {
        let mut gate = self.gate.lock().expect("gate");
        if gate.closed || gate.generation != generation {
            return Admission::Refuse;
        }
        let mut hold = false;
        if let Some(action) = action.filter(|a| is_write(a)) {
            gate.writes += 1;
            if gate.writes == self.hold_at.load(Ordering::SeqCst) {
                gate.closed = true;
                gate.held_action = Some(action.to_string());
                hold = true;
            }
        }
        gate.in_flight += 1;
        Admission::Forward { hold }
    }
}

/// Whether an action changes something. `Simulate*` evaluates policies and changes nothing;
/// S3's `Head*` only reads.
fn is_write(action: &str) -> bool {
    !["Get", "List", "Describe", "Simulate", "Head"]
        .iter()
        .any(|p| action.starts_with(p))
}

impl Moto {
    /// Starts moto; fails the test (never skips) when it cannot, unless skipping was asked for.
    pub(crate) fn start() -> Option<Moto> {
        if skip_aws() {
            eprintln!("SKYFORM_SKIP_AWS_TESTS=1: skipping an AWS test");
            return None;
        }
        let bin = std::env::var("MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
        let port = free_port();
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin} ({e}); install moto[server] or run scripts/test (SKYFORM_SKIP_AWS_TESTS=1 skips AWS tests)"));
        let direct = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let calls = Arc::new(Mutex::new(Vec::new()));
        let proxy = TcpListener::bind("127.0.0.1:0").expect("proxy bind");
        let url = format!("http://{}", proxy.local_addr().expect("proxy addr"));
        let recorded = Arc::clone(&calls);
        let faults = Arc::new(Faults::default());
        let injected = Arc::clone(&faults);
        std::thread::spawn(move || {
            for client in proxy.incoming().flatten() {
                let recorded = Arc::clone(&recorded);
                let injected = Arc::clone(&injected);
                let generation = injected.generation();
                injected.accepted.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    let _ = relay(client, port, generation, &recorded, &injected);
                });
            }
        });
        Some(Moto {
            child,
            port,
            direct,
            url,
            calls,
            faults,
        })
    }

    /// From now on the proxy answers the requests `answer` returns something for, instead of
    /// forwarding them to moto.
    pub(crate) fn answer_with(
        &self,
        answer: impl Fn(&str, &str) -> Option<(u16, String)> + Send + Sync + 'static,
    ) {
        *self.faults.answer.0.lock().expect("answer") = Some(Arc::new(answer));
    }

    /// `skyform -C <project>` pointed at this server through the proxy.
    pub(crate) fn skyform(&self, project: &Project) -> assert_cmd::Command {
        let mut c = assert_cmd::Command::cargo_bin("skyform").expect("binary");
        c.arg("-C")
            .arg(project.path())
            .env("AWS_ENDPOINT_URL", &self.url)
            .env_remove("AWS_PROFILE");
        dummy_credentials(&mut c);
        c
    }

    /// Runs `skyform ARGS` against this server and captures the result.
    pub(crate) fn run(&self, project: &Project, args: &[&str]) -> std::process::Output {
        self.skyform(project)
            .args(args)
            .output()
            .expect("run skyform")
    }

    /// Plans with `--detailed-exitcode` and requires "No changes." (exit 0).
    pub(crate) fn assert_plan_clean(&self, project: &Project) {
        let plan = self.run(project, &["plan", "--detailed-exitcode"]);
        assert_eq!(
            plan.status.code(),
            Some(0),
            "{}{}",
            stdout(&plan),
            stderr(&plan)
        );
        assert!(stdout(&plan).contains("No changes."), "{}", stdout(&plan));
    }

    /// The AWS actions received so far that change something.
    pub(crate) fn writes(&self) -> Vec<String> {
        let calls = self.calls.lock().expect("calls");
        calls.iter().filter(|a| is_write(a)).cloned().collect()
    }

    /// `skyform -C <project>` as a plain process, for tests that signal or kill it.
    pub(crate) fn process(&self, project: &Project, args: &[&str]) -> std::process::Command {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin("skyform"));
        c.arg("-C")
            .arg(project.path())
            .args(args)
            .env("AWS_ENDPOINT_URL", &self.url)
            .env_remove("AWS_PROFILE")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// Waits until the proxy holds a write's answer, or the process ends; true when held.
    pub(crate) fn wait_held(&self, child: &mut Child, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if self.faults.held.load(Ordering::SeqCst) {
                return true;
            }
            if matches!(child.try_wait(), Ok(Some(_))) || Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs `apply --auto-approve` and SIGKILLs it once the proxy holds the answer to its
    /// `k`-th write (counted from the last `resume`), then waits until what it sent has landed
    /// and re-opens forwarding. Answers the held action, or the run's output when the apply
    /// ended before its `k`-th write.
    pub(crate) fn kill_apply_at_write(
        &self,
        project: &Project,
        k: usize,
    ) -> Result<String, std::process::Output> {
        self.faults.hold_at.store(k, Ordering::SeqCst);
        let mut child = self
            .process(project, &["apply", "--auto-approve"])
            .spawn()
            .expect("spawn skyform");
        let held = self.wait_held(&mut child, Duration::from_mins(1));
        let _ = child.kill(); // SIGKILL
        let killed = child.wait_with_output().expect("wait for skyform");
        self.quiesce(Duration::from_secs(30));
        let action = self.held_action();
        self.resume();
        match action {
            Some(action) if held => Ok(action),
            _ => Err(killed),
        }
    }

    pub(crate) fn clear_calls(&self) {
        self.calls.lock().expect("calls").clear();
    }

    /// The action whose answer was held at the kill point, if one was.
    pub(crate) fn held_action(&self) -> Option<String> {
        self.faults.gate.lock().expect("gate").held_action.clone()
    }

    /// Waits until no admitted request is still being forwarded to moto, so that after a
    /// kill everything the dead process sent has either landed or never will.
    pub(crate) fn quiesce(&self, limit: Duration) {
        let gate = self.faults.gate.lock().expect("gate");
        let (gate, timeout) = self
            .faults
            .settled
            .wait_timeout_while(gate, limit, |g| g.in_flight > 0)
            .expect("gate");
        assert!(
            !timeout.timed_out(),
            "{} forwards still in flight after {limit:?}",
            gate.in_flight
        );
    }

    /// Re-opens forwarding for the next run: no hold, write numbering from 1 again, and
    /// connections accepted before now (a killed process's) are refused for good.
    pub(crate) fn resume(&self) {
        let mut gate = self.faults.gate.lock().expect("gate");
        gate.generation += 1;
        gate.writes = 0;
        gate.closed = false;
        gate.held_action = None;
        self.faults.hold_at.store(0, Ordering::SeqCst);
        self.faults.held.store(false, Ordering::SeqCst);
    }

    /// Wipes everything moto holds (about 1 s), for a fresh account without a new server.
    pub(crate) fn reset(&self) {
        self.moto_api("/moto-api/reset", "application/json", "");
    }

    /// An EC2 client that talks to moto directly, to check results through the AWS API.
    pub(crate) fn ec2(&self) -> aws_sdk_ec2::Client {
        self.ec2_in("us-east-1")
    }

    /// An EC2 client of `region` that talks to moto directly (moto keeps each region's
    /// objects apart).
    pub(crate) fn ec2_in(&self, region: &str) -> aws_sdk_ec2::Client {
        let creds = aws_sdk_ec2::config::Credentials::new("testing", "testing", None, None, "test");
        let conf = aws_sdk_ec2::Config::builder()
            .behavior_version(aws_sdk_ec2::config::BehaviorVersion::latest())
            .region(aws_sdk_ec2::config::Region::new(region.to_string()))
            .credentials_provider(creds)
            .endpoint_url(&self.direct)
            .build();
        aws_sdk_ec2::Client::from_conf(conf)
    }

    /// An IAM client that talks to moto directly, to check results through the AWS API.
    pub(crate) fn iam(&self) -> aws_sdk_iam::Client {
        let creds = aws_sdk_iam::config::Credentials::new("testing", "testing", None, None, "test");
        let conf = aws_sdk_iam::Config::builder()
            .behavior_version(aws_sdk_iam::config::BehaviorVersion::latest())
            .region(aws_sdk_iam::config::Region::new("us-east-1"))
            .credentials_provider(creds)
            .endpoint_url(&self.direct)
            .build();
        aws_sdk_iam::Client::from_conf(conf)
    }
}

/// The text of a `terraform { backend "s3" }` block for `bucket` and `key`, path-style (moto
/// needs it), with `extra` settings lines added inside the block.
pub(crate) fn s3_backend(bucket: &str, key: &str, extra: &str) -> String {
    format!(
        "terraform {{\n  backend \"s3\" {{\n    bucket         = \"{bucket}\"\n    key            = \"{key}\"\n    region         = \"us-east-1\"\n    use_path_style = true\n{extra}  }}\n}}\n"
    )
}

impl Moto {
    /// An S3 client that talks to moto directly, to check the backend's objects.
    pub(crate) fn s3(&self) -> aws_sdk_s3::Client {
        let creds = aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "test");
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .credentials_provider(creds)
            .endpoint_url(&self.direct)
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    /// Creates a bucket of its own for one test (a name no other test uses) and returns it.
    pub(crate) fn bucket(&self, name: &str) -> String {
        block_on(self.s3().create_bucket().bucket(name).send()).expect("create bucket");
        name.to_string()
    }

    /// Every key in `bucket`, in order.
    pub(crate) fn s3_keys(&self, bucket: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let out = block_on(
                self.s3()
                    .list_objects_v2()
                    .bucket(bucket)
                    .set_continuation_token(token)
                    .send(),
            )
            .expect("list objects");
            keys.extend(
                out.contents()
                    .iter()
                    .filter_map(|o| o.key().map(String::from)),
            );
            token = out.next_continuation_token().map(String::from);
            if token.is_none() {
                return keys;
            }
        }
    }
}

impl Moto {
    /// Switches moto's IAM authorization on (every request must be allowed by the caller's
    /// policies) or off.
    pub(crate) fn set_auth(&self, on: bool) {
        let body = if on { "0" } else { "inf" };
        self.moto_api("/moto-api/reset-auth", "text/plain", body);
    }

    /// POSTs to moto's own API, directly (not through the proxy), and expects 200.
    fn moto_api(&self, path: &str, content_type: &str, body: &str) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect moto");
        write!(
            s,
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .expect("write");
        let mut answer = String::new();
        s.read_to_string(&mut answer).expect("read");
        assert!(answer.contains("200 OK"), "{path}: {answer}");
    }

    /// Temporary credentials for `role_arn`, from STS `AssumeRole` (moto returns credentials
    /// that act in the role's account).
    pub(crate) fn assume_role(&self, role_arn: &str) -> (String, String, String) {
        let creds = aws_sdk_sts::config::Credentials::new("testing", "testing", None, None, "test");
        let conf = aws_sdk_sts::Config::builder()
            .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
            .region(aws_sdk_sts::config::Region::new("us-east-1"))
            .credentials_provider(creds)
            .endpoint_url(&self.direct)
            .build();
        let sts = aws_sdk_sts::Client::from_conf(conf);
        let out = block_on(
            sts.assume_role()
                .role_arn(role_arn)
                .role_session_name("second-identity")
                .send(),
        )
        .expect("assume role");
        let c = out.credentials().expect("credentials");
        (
            c.access_key_id().to_string(),
            c.secret_access_key().to_string(),
            c.session_token().to_string(),
        )
    }
}

/// Whether a NAT gateway still exists for a census: `deleted`, `deleting` and `failed` ones
/// linger in `DescribeNatGateways` but are gone.
pub(crate) fn nat_gateway_live(g: &aws_sdk_ec2::types::NatGateway) -> bool {
    !matches!(
        g.state().map(aws_sdk_ec2::types::NatGatewayState::as_str),
        Some("deleted" | "deleting" | "failed")
    )
}

/// An EC2 object's tag value, as the EC2 API lists its tags.
pub(crate) fn ec2_tag<'a>(tags: &'a [aws_sdk_ec2::types::Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

/// The roles an instance profile holds, read through the IAM API.
pub(crate) async fn profile_roles(iam: &aws_sdk_iam::Client, profile: &str) -> Vec<String> {
    let out = iam
        .get_instance_profile()
        .instance_profile_name(profile)
        .send()
        .await
        .expect("profile");
    out.instance_profile()
        .expect("instance profile")
        .roles()
        .iter()
        .map(|r| r.role_name().to_string())
        .collect()
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// Forwards HTTP/1.1 requests one at a time, recording each query-protocol `Action` that
/// reaches moto. `generation` is the gate's generation when the connection was accepted.
fn relay(
    client: TcpStream,
    port: u16,
    generation: u64,
    calls: &Mutex<Vec<String>>,
    faults: &Faults,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client = client;
    loop {
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let end = line == "\r\n";
            head.push(line);
            if end {
                break;
            }
        }
        let len = head
            .iter()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
            })
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        reader.read_exact(&mut body)?;
        let text = String::from_utf8_lossy(&body);
        let action = text
            .split('&')
            .find_map(|kv| kv.strip_prefix("Action="))
            .map(String::from)
            .or_else(|| s3_action(&head[0]));
        // Injected faults never reach moto, so they change nothing there.
        let roll = faults.roll();
        let cut = faults.cut_per_mille.load(Ordering::SeqCst);
        let throttle = faults.throttle_per_mille.load(Ordering::SeqCst);
        if roll < cut {
            faults.cut.fetch_add(1, Ordering::SeqCst);
            return Ok(());
        }
        let unavailable = faults.unavailable_per_mille.load(Ordering::SeqCst);
        if roll >= cut + throttle && roll < cut + throttle + unavailable {
            faults.unavailable.fetch_add(1, Ordering::SeqCst);
            let body = "<ErrorResponse><Error><Code>ServiceUnavailable</Code><Message>injected</Message></Error></ErrorResponse>";
            write!(
                client,
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )?;
            continue;
        }
        if roll < cut + throttle {
            faults.throttled.fetch_add(1, Ordering::SeqCst);
            let body = if text.contains("Version=2016-11-15") {
                "<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>injected</RequestID></Response>"
            } else {
                "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>injected</RequestId></ErrorResponse>"
            };
            write!(
                client,
                "HTTP/1.1 400 Bad Request\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )?;
            continue;
        }
        if action.as_deref().is_some_and(is_write) {
            let delay = faults.write_delay_ms.load(Ordering::SeqCst) as u64;
            if delay > 0 {
                std::thread::sleep(Duration::from_millis(delay));
            }
        }
        // A dead client's request is still readable from its socket; it must not be sent on.
        let admission = if peer_gone(&client) {
            Admission::Refuse
        } else {
            faults.admit(generation, action.as_deref())
        };
        let hold = match admission {
            Admission::Refuse => {
                faults.refused.fetch_add(1, Ordering::SeqCst);
                return Ok(());
            }
            Admission::Forward { hold } => hold,
        };
        let in_flight = InFlight(faults);
        if let Some(action) = &action {
            calls.lock().expect("calls").push(action.clone());
        }
        let answered = action
            .as_deref()
            .and_then(|a| faults.answer.answer(a, &text));
        let response = match answered {
            Some((status, xml)) => format!(
                "HTTP/1.1 {status} {}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{xml}",
                if status < 400 { "OK" } else { "Error" },
                xml.len()
            )
            .into_bytes(),
            None => forward(port, &head, &body)?,
        };
        drop(in_flight);
        if hold {
            // AWS acted; the caller is left waiting until it is killed.
            faults.held.store(true, Ordering::SeqCst);
            wait_for_hangup(&mut client, Duration::from_mins(2));
            return Ok(());
        }
        client.write_all(&response)?;
        let head_end = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or(response.len());
        if String::from_utf8_lossy(&response[..head_end])
            .to_ascii_lowercase()
            .contains("connection: close")
        {
            return Ok(());
        }
    }
}

/// The S3 action of a request without a query-protocol `Action` (S3 is REST), from its
/// request line, named as skyform's `--stats` names it; moto is addressed path-style.
fn s3_action(request_line: &str) -> Option<String> {
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next()?, parts.next()?);
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    // Only the bucket-and-key paths of S3; moto's own API is never proxied.
    (path.len() > 1).then(|| skyform::aws::s3_action(method, path, query, true).to_string())
}

/// Sends one request to moto and reads its whole answer.
fn forward(port: u16, head: &[String], body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut upstream = TcpStream::connect(("127.0.0.1", port))?;
    for line in head {
        if line.to_ascii_lowercase().starts_with("connection:") {
            continue;
        }
        if line == "\r\n" {
            upstream.write_all(b"Connection: close\r\n")?;
        }
        upstream.write_all(line.as_bytes())?;
    }
    upstream.write_all(body)?;
    let mut response = Vec::new();
    upstream.read_to_end(&mut response)?;
    Ok(response)
}

/// Whether the client has closed its end (or reset it): a request read from such a socket
/// was sent by a process that is no longer waiting for it.
fn peer_gone(client: &TcpStream) -> bool {
    if client.set_nonblocking(true).is_err() {
        return true;
    }
    let gone = match client.peek(&mut [0u8; 1]) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    };
    client.set_nonblocking(false).is_err() || gone
}

/// Keeps a held connection open, unanswered, until the client hangs up or `limit` passes.
fn wait_for_hangup(client: &mut TcpStream, limit: Duration) {
    let deadline = Instant::now() + limit;
    if client
        .set_read_timeout(Some(Duration::from_millis(200)))
        .is_err()
    {
        return;
    }
    let mut sink = [0u8; 512];
    while Instant::now() < deadline {
        match client.read(&mut sink) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

pub(crate) fn example_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

pub(crate) fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A role's trust policy as IAM returns it.
pub(crate) async fn trust_policy(iam: &aws_sdk_iam::Client, role: &str) -> serde_json::Value {
    let role = iam
        .get_role()
        .role_name(role)
        .send()
        .await
        .expect("role")
        .role
        .expect("role");
    skyform::lang::document::parse_document(role.assume_role_policy_document().unwrap_or_default())
        .expect("trust json")
}

/// One version of a managed policy's document as IAM returns it.
pub(crate) async fn policy_document(
    iam: &aws_sdk_iam::Client,
    arn: &str,
    version: &str,
) -> serde_json::Value {
    let v = iam
        .get_policy_version()
        .policy_arn(arn)
        .version_id(version)
        .send()
        .await
        .expect("version");
    skyform::lang::document::parse_document(
        v.policy_version()
            .and_then(|v| v.document())
            .unwrap_or_default(),
    )
    .expect("policy json")
}

/// The ARNs of the managed policies attached to a role, as IAM lists them.
pub(crate) async fn attached_role_policies(iam: &aws_sdk_iam::Client, role: &str) -> Vec<String> {
    iam.list_attached_role_policies()
        .role_name(role)
        .send()
        .await
        .expect("attached")
        .attached_policies()
        .iter()
        .filter_map(|a| a.policy_arn().map(String::from))
        .collect()
}

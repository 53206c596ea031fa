//! Test support: a temporary project, the `skyform` command, a moto server per test, and a
//! recording proxy that counts the AWS calls skyform makes (so "no write call" is checked
//! from outside skyform).

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    pub fn new(files: &[(&str, &str)]) -> Project {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = Project { dir };
        for (name, text) in files {
            p.write(name, text);
        }
        p
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, name: &str, text: &str) {
        std::fs::write(self.dir.path().join(name), text).expect("write fixture");
    }

    /// `skyform -C <project>` with no AWS reachable (a closed port), for tests that must not
    /// touch AWS.
    pub fn offline(&self) -> assert_cmd::Command {
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

/// Whether AWS tests may be skipped: only with an explicit SKYFORM_SKIP_AWS_TESTS=1.
pub fn skip_aws() -> bool {
    std::env::var("SKYFORM_SKIP_AWS_TESTS").is_ok_and(|v| v == "1")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A moto server of its own for one test, with a recording proxy in front of it.
pub struct Moto {
    child: Child,
    pub direct: String,
    pub url: String,
    pub calls: Arc<Mutex<Vec<String>>>,
    pub faults: Arc<Faults>,
}

/// What the proxy does to requests besides recording them.
#[derive(Debug, Default)]
pub struct Faults {
    /// Hold the answer to the n-th write call (1-based; 0 = never): it reaches AWS, but the
    /// caller never hears back, as when a process dies mid-call.
    pub hold_at: AtomicUsize,
    /// Set once a write's answer is being held.
    pub held: AtomicBool,
    writes_seen: AtomicUsize,
    /// Per mille of requests answered with a throttling error, and of connections cut before
    /// the request is forwarded.
    pub throttle_per_mille: AtomicUsize,
    pub cut_per_mille: AtomicUsize,
    /// Per mille of requests answered with HTTP 503.
    pub unavailable_per_mille: AtomicUsize,
    /// Milliseconds each write waits before it is forwarded (a slow AWS).
    pub write_delay_ms: AtomicUsize,
    /// Counters of what was injected.
    pub throttled: AtomicUsize,
    pub cut: AtomicUsize,
    pub unavailable: AtomicUsize,
    rng: Mutex<u64>,
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
}

fn is_write(action: &str) -> bool {
    !["Get", "List", "Describe"]
        .iter()
        .any(|p| action.starts_with(p))
}

impl Moto {
    /// Starts moto; fails the test (never skips) when it cannot, unless skipping was asked for.
    pub fn start() -> Option<Moto> {
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
                std::thread::spawn(move || {
                    let _ = relay(client, port, &recorded, &injected);
                });
            }
        });
        Some(Moto {
            child,
            direct,
            url,
            faults,
            calls,
        })
    }

    /// `skyform -C <project>` pointed at this server through the proxy.
    pub fn skyform(&self, project: &Project) -> assert_cmd::Command {
        let mut c = assert_cmd::Command::cargo_bin("skyform").expect("binary");
        c.arg("-C")
            .arg(project.path())
            .env("AWS_ENDPOINT_URL", &self.url)
            .env_remove("AWS_PROFILE");
        dummy_credentials(&mut c);
        c
    }

    /// Runs `skyform ARGS` against this server and captures the result.
    pub fn run(&self, project: &Project, args: &[&str]) -> std::process::Output {
        self.skyform(project)
            .args(args)
            .output()
            .expect("run skyform")
    }

    /// The AWS actions received so far that change something.
    pub fn writes(&self) -> Vec<String> {
        let calls = self.calls.lock().expect("calls");
        calls.iter().filter(|a| is_write(a)).cloned().collect()
    }

    /// `skyform -C <project>` as a plain process, for tests that signal or kill it.
    pub fn process(&self, project: &Project, args: &[&str]) -> std::process::Command {
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
    pub fn wait_held(&self, child: &mut Child, limit: Duration) -> bool {
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

    pub fn clear_calls(&self) {
        self.calls.lock().expect("calls").clear();
    }

    /// An EC2 client that talks to moto directly, to check results through the AWS API.
    pub fn ec2(&self) -> aws_sdk_ec2::Client {
        let creds = aws_sdk_ec2::config::Credentials::new("testing", "testing", None, None, "test");
        let conf = aws_sdk_ec2::Config::builder()
            .behavior_version(aws_sdk_ec2::config::BehaviorVersion::latest())
            .region(aws_sdk_ec2::config::Region::new("us-east-1"))
            .credentials_provider(creds)
            .endpoint_url(&self.direct)
            .build();
        aws_sdk_ec2::Client::from_conf(conf)
    }

    /// An IAM client that talks to moto directly, to check results through the AWS API.
    pub fn iam(&self) -> aws_sdk_iam::Client {
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

impl Moto {
    /// Switches moto's IAM authorization on (every request must be allowed by the caller's
    /// policies) or off.
    pub fn set_auth(&self, on: bool) {
        let port = self
            .direct
            .rsplit(':')
            .next()
            .and_then(|p| p.parse::<u16>().ok())
            .expect("port");
        let body = if on { "0" } else { "inf" };
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect moto");
        write!(
            s,
            "POST /moto-api/reset-auth HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .expect("write");
        let mut answer = String::new();
        s.read_to_string(&mut answer).expect("read");
        assert!(answer.contains("200 OK"), "reset-auth: {answer}");
    }

    /// Temporary credentials for `role_arn`, from STS AssumeRole (moto returns credentials
    /// that act in the role's account).
    pub fn assume_role(&self, role_arn: &str) -> (String, String, String) {
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

/// The roles an instance profile holds, read through the IAM API.
pub async fn profile_roles(iam: &aws_sdk_iam::Client, profile: &str) -> Vec<String> {
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

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// Forwards HTTP/1.1 requests one at a time, recording each query-protocol `Action`.
fn relay(
    client: TcpStream,
    port: u16,
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
            .map(String::from);
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
        let mut hold = false;
        if let Some(action) = &action {
            calls.lock().expect("calls").push(action.clone());
            if is_write(action) {
                let n = faults.writes_seen.fetch_add(1, Ordering::SeqCst) + 1;
                hold = n == faults.hold_at.load(Ordering::SeqCst);
                let delay = faults.write_delay_ms.load(Ordering::SeqCst) as u64;
                if delay > 0 {
                    std::thread::sleep(Duration::from_millis(delay));
                }
            }
        }
        let mut upstream = TcpStream::connect(("127.0.0.1", port))?;
        for line in &head {
            if line.to_ascii_lowercase().starts_with("connection:") {
                continue;
            }
            if line == "\r\n" {
                upstream.write_all(b"Connection: close\r\n")?;
            }
            upstream.write_all(line.as_bytes())?;
        }
        upstream.write_all(&body)?;
        let mut response = Vec::new();
        upstream.read_to_end(&mut response)?;
        if hold {
            // AWS acted; the caller is left waiting until it is killed.
            faults.held.store(true, Ordering::SeqCst);
            std::thread::sleep(Duration::from_secs(120));
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

pub fn example_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

pub fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

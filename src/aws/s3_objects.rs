//! `ObjectStore` over S3: the objects of the S3 backend (`state::remote` keeps the state in
//! them). Conditional writes are S3's own (`If-None-Match: *`, `If-Match: <etag>`); every
//! object written carries the backend's server-side encryption (SSE-S3 with `encrypt`, SSE-KMS
//! with `kms_key_id`).
//!
//! The client is made on first use, from the backend's region and profile through aws-config's
//! default chain (so `AWS_ENDPOINT_URL` reaches an emulator, as for the provider): opening the
//! store stays synchronous and free, and a command that never touches the state never loads
//! credentials for it. Clones share the client.

use std::sync::Arc;

use aws_config::retry::RetryConfig;
use aws_config::BehaviorVersion;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier, ServerSideEncryption};
use tokio::sync::OnceCell;

use crate::lang::terraform::S3Backend;
use crate::state::objects::{Object, ObjectError, ObjectStore, PutIf};

/// `DeleteObjects` takes at most this many keys per request.
const DELETE_CHUNK: usize = 1000;

/// A bucket's objects, through one lazily made client shared by clones.
#[derive(Debug, Clone)]
pub(crate) struct S3Objects {
    settings: Arc<S3Backend>,
    client: Arc<OnceCell<aws_sdk_s3::Client>>,
}

impl S3Objects {
    /// The objects of the bucket a backend block names, reached and encrypted as it says.
    pub(crate) fn new(settings: S3Backend) -> S3Objects {
        S3Objects {
            settings: Arc::new(settings),
            client: Arc::default(),
        }
    }

    async fn client(&self) -> Result<&aws_sdk_s3::Client, ObjectError> {
        self.client
            .get_or_try_init(|| async {
                let s = &self.settings;
                let mut loader = aws_config::defaults(BehaviorVersion::latest())
                    .retry_config(RetryConfig::standard().with_max_attempts(8));
                if let Some(p) = &s.profile {
                    loader = loader.profile_name(p);
                }
                if let Some(r) = &s.region {
                    loader = loader.region(aws_config::Region::new(r.clone()));
                }
                let conf = loader.load().await;
                if conf.region().is_none() {
                    return Err(ObjectError::Other {
                        message: "no AWS region for the S3 backend: give region in the backend \"s3\" block, or set AWS_REGION".into(),
                    });
                }
                Ok(client_of(&conf, s))
            })
            .await
    }

    /// Checks that the bucket exists and these credentials may use it (`skyform init`).
    pub(crate) async fn check_bucket(&self) -> Result<(), ObjectError> {
        let client = self.client().await?;
        client
            .head_bucket()
            .bucket(&self.settings.bucket)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| match e.raw_response().map(|r| r.status().as_u16()) {
                Some(404) => other(format!(
                    "the bucket {} does not exist (create it, with versioning on, before using the S3 backend)",
                    self.settings.bucket
                )),
                Some(403) => other(format!(
                    "access to the bucket {} is denied to these credentials",
                    self.settings.bucket
                )),
                _ => failure(&format!("reaching the bucket {}", self.settings.bucket), &e),
            })
    }
}

/// The S3 client for these settings over the loaded AWS configuration.
fn client_of(conf: &aws_config::SdkConfig, s: &S3Backend) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(conf)
        .force_path_style(s.use_path_style)
        // Checksums only where S3 requires them (DeleteObjects): a plain body with a
        // Content-Length is what every S3-compatible endpoint reads.
        .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired)
        .interceptor(super::CountRequests::s3(s.use_path_style))
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

fn other(message: String) -> ObjectError {
    ObjectError::Other { message }
}

/// An SDK error as one line: AWS's code and message when it sent them, else the cause.
fn failure<E, R>(doing: &str, e: &SdkError<E, R>) -> ObjectError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let text = match (e.code(), e.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_string(),
        _ => DisplayErrorContext(e).to_string(),
    };
    other(format!("{doing}: {text}"))
}

impl ObjectStore for S3Objects {
    fn location(&self) -> String {
        format!("s3://{}", self.settings.bucket)
    }

    async fn get(&self, key: &str) -> Result<Option<Object>, ObjectError> {
        let client = self.client().await?;
        let out = match client
            .get_object()
            .bucket(&self.settings.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e)
                if e.as_service_error().is_some_and(
                    aws_sdk_s3::operation::get_object::GetObjectError::is_no_such_key,
                ) =>
            {
                return Ok(None)
            }
            Err(e) => {
                return Err(failure(
                    &format!("reading s3://{}/{key}", self.settings.bucket),
                    &e,
                ))
            }
        };
        let etag = out.e_tag().unwrap_or_default().to_string();
        let body = out.body.collect().await.map_err(|e| {
            other(format!(
                "reading s3://{}/{key}: the body was cut: {e}",
                self.settings.bucket
            ))
        })?;
        Ok(Some(Object {
            body: body.into_bytes().to_vec(),
            etag,
        }))
    }

    async fn put(&self, key: &str, body: Vec<u8>, when: PutIf<'_>) -> Result<String, ObjectError> {
        let client = self.client().await?;
        let s = &self.settings;
        let mut put = client
            .put_object()
            .bucket(&s.bucket)
            .key(key)
            .body(ByteStream::from(body));
        put = match when {
            PutIf::Always => put,
            PutIf::Absent => put.if_none_match("*"),
            PutIf::Matches(etag) => put.if_match(etag),
        };
        // SSE-KMS wins over `encrypt`, as in Terraform's backend.
        if let Some(k) = &s.kms_key_id {
            put = put
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .ssekms_key_id(k);
        } else if s.encrypt {
            put = put.server_side_encryption(ServerSideEncryption::Aes256);
        }
        match put.send().await {
            Ok(out) => Ok(out.e_tag().unwrap_or_default().to_string()),
            Err(e) => {
                // 412: the condition failed. 409 ConditionalRequestConflict: another
                // conditional write to the key was in flight; either way someone else won.
                let status = e.raw_response().map(|r| r.status().as_u16());
                if status == Some(412)
                    || e.code() == Some("PreconditionFailed")
                    || e.code() == Some("ConditionalRequestConflict")
                {
                    Err(ObjectError::Precondition { key: key.into() })
                } else {
                    Err(failure(&format!("writing s3://{}/{key}", s.bucket), &e))
                }
            }
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, ObjectError> {
        let client = self.client().await?;
        let mut pages = client
            .list_objects_v2()
            .bucket(&self.settings.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        let mut keys = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                failure(
                    &format!("listing s3://{}/{prefix}", self.settings.bucket),
                    &e,
                )
            })?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(String::from)),
            );
        }
        // S3 lists in UTF-8 binary order already; sorting keeps the trait's promise for any
        // S3-compatible store.
        keys.sort();
        Ok(keys)
    }

    async fn delete(&self, keys: &[String]) -> Result<(), ObjectError> {
        let client = self.client().await?;
        for chunk in keys.chunks(DELETE_CHUNK) {
            let objects = chunk
                .iter()
                .map(|k| ObjectIdentifier::builder().key(k).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| other(format!("deleting objects: {e}")))?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|e| other(format!("deleting objects: {e}")))?;
            let out = client
                .delete_objects()
                .bucket(&self.settings.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| {
                    failure(
                        &format!("deleting objects in s3://{}", self.settings.bucket),
                        &e,
                    )
                })?;
            // A key already gone is not an error (S3 reports none for it); anything else is.
            if let Some(err) = out.errors().first() {
                return Err(other(format!(
                    "deleting s3://{}/{}: {}: {}",
                    self.settings.bucket,
                    err.key().unwrap_or_default(),
                    err.code().unwrap_or_default(),
                    err.message().unwrap_or_default()
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// moto on a free port, stopped when dropped; `None` only with `SKYFORM_SKIP_AWS_TESTS=1`.
    struct Moto {
        child: std::process::Child,
        url: String,
    }

    impl Drop for Moto {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn moto() -> Option<Moto> {
        if std::env::var("SKYFORM_SKIP_AWS_TESTS").is_ok_and(|v| v == "1") {
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let bin = std::env::var("MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
        let child = std::process::Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "moto did not start");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Some(Moto {
            child,
            url: format!("http://127.0.0.1:{port}"),
        })
    }

    /// A client that talks to moto directly, to check through S3's API.
    fn direct(url: &str) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .endpoint_url(url)
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    /// The store, with its client made as `client` makes it but pointed at moto (the
    /// environment is the test process's, shared by threads, so it is not set through it).
    fn store(url: &str, settings: S3Backend) -> S3Objects {
        let conf = aws_config::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(
                aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "test"),
            ))
            .endpoint_url(url)
            .build();
        let settings = S3Backend {
            use_path_style: true,
            ..settings
        };
        let s = S3Objects::new(settings.clone());
        let _ = s.client.set(client_of(&conf, &settings));
        s
    }

    /// How S3 says an object is encrypted (`HeadObject`): the algorithm and the KMS key.
    async fn encryption(
        s3: &aws_sdk_s3::Client,
        bucket: &str,
        key: &str,
    ) -> (Option<ServerSideEncryption>, Option<String>) {
        let head = s3
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap();
        (
            head.server_side_encryption().cloned(),
            head.ssekms_key_id().map(String::from),
        )
    }

    #[tokio::test]
    async fn s3_objects_write_conditionally_encrypt_and_list_every_page() {
        let Some(moto) = moto() else { return };
        let s3 = direct(&moto.url);
        for bucket in ["plain", "sealed"] {
            s3.create_bucket().bucket(bucket).send().await.unwrap();
        }
        let plain = store(
            &moto.url,
            S3Backend {
                bucket: "plain".into(),
                encrypt: true,
                ..S3Backend::default()
            },
        );
        assert_eq!(plain.get("k").await.unwrap(), None);
        let first = plain.put("k", b"1".to_vec(), PutIf::Absent).await.unwrap();
        assert_eq!(
            plain.put("k", b"2".to_vec(), PutIf::Absent).await,
            Err(ObjectError::Precondition { key: "k".into() })
        );
        let second = plain
            .put("k", b"2".to_vec(), PutIf::Matches(&first))
            .await
            .unwrap();
        assert_eq!(
            plain.put("k", b"3".to_vec(), PutIf::Matches(&first)).await,
            Err(ObjectError::Precondition { key: "k".into() })
        );
        let now = plain.get("k").await.unwrap().unwrap();
        assert_eq!((now.body, now.etag), (b"2".to_vec(), second));
        assert_eq!(
            encryption(&s3, "plain", "k").await,
            (Some(ServerSideEncryption::Aes256), None)
        );

        let sealed = store(
            &moto.url,
            S3Backend {
                bucket: "sealed".into(),
                encrypt: true,
                kms_key_id: Some("arn:aws:kms:us-east-1:123456789012:key/state".into()),
                ..S3Backend::default()
            },
        );
        sealed.put("k", vec![], PutIf::Always).await.unwrap();
        assert_eq!(
            encryption(&s3, "sealed", "k").await,
            (
                Some(ServerSideEncryption::AwsKms),
                Some("arn:aws:kms:us-east-1:123456789012:key/state".into())
            )
        );

        // More keys than one page (1000) and than one DeleteObjects request.
        let keys: Vec<String> = (0..1100).map(|i| format!("j/{i:05}")).collect();
        for k in &keys {
            plain.put(k, vec![], PutIf::Always).await.unwrap();
        }
        assert_eq!(plain.list("j/").await.unwrap(), keys);
        plain.delete(&keys).await.unwrap();
        plain.delete(&keys[..2]).await.unwrap();
        let left = s3.list_objects_v2().bucket("plain").send().await.unwrap();
        let left: Vec<&str> = left.contents().iter().filter_map(|o| o.key()).collect();
        assert_eq!(left, ["k"]);
        assert_eq!(plain.location(), "s3://plain");
        let missing = store(
            &moto.url,
            S3Backend {
                bucket: "missing".into(),
                ..S3Backend::default()
            },
        );
        let err = missing.check_bucket().await.unwrap_err().to_string();
        assert!(err.contains("the bucket missing does not exist"), "{err}");
        plain.check_bucket().await.unwrap();
    }
}

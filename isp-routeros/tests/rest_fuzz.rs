//! Hostile REST responses, as `proto_props.rs` does for the API codec: garbled,
//! truncated and random JSON bodies, wrong types, huge values and bodies, odd
//! statuses and broken HTTP from a scripted server. Every call of
//! [`RestClient`] ends in a clear error (or a well-formed answer), never a
//! panic, with a bounded message that never holds the password, and bodies
//! past `max_response_bytes` are refused without being buffered.
//! Bounded case counts so that they run in every `cargo test`.

use std::sync::Arc;
use std::time::Duration;

use isp_routeros::client::{ClientConfig, Credentials};
use isp_routeros::rest::{RestClient, RestEndpoint, RestError};
use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const PASSWORD: &str = "rest-Fuzz-pw-91";
/// Longest error text accepted: a message must name the request and the
/// problem, not echo a hostile body.
const MAX_ERROR_LEN: usize = 4096;
/// `max_response_bytes` of the client under test.
const LIMIT: usize = 1024 * 1024;

/// What the scripted router answers to every request.
#[derive(Debug, Clone)]
enum Answer {
    /// A status line, a JSON content type and this body (with `Content-Length`).
    Json(u16, Vec<u8>),
    /// These bytes as they are, then close.
    Raw(Vec<u8>),
    /// A 200 with a chunked body of `n` bytes of `[` sent until the client hangs up.
    EndlessChunks,
    /// A 200 announcing a `Content-Length` past the limit, then a few bytes.
    HugeLength,
}

/// Serves `answer` to every request on a fresh port; one connection at a time is enough.
async fn serve(answer: Answer) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                // Read the request head and its body (the client sends Content-Length).
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let head_end = loop {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                while buf.len() < head_end + length {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                match &*answer {
                    Answer::Json(status, body) => {
                        let head = format!(
                            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = sock.write_all(head.as_bytes()).await;
                        let _ = sock.write_all(body).await;
                    }
                    Answer::Raw(bytes) => {
                        let _ = sock.write_all(bytes).await;
                    }
                    Answer::EndlessChunks => {
                        let _ = sock
                            .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
                            .await;
                        let piece = vec![b'['; 64 * 1024];
                        let mut framed = format!("{:x}\r\n", piece.len()).into_bytes();
                        framed.extend_from_slice(&piece);
                        framed.extend_from_slice(b"\r\n");
                        // Until the client hangs up (bounded, in case it never does).
                        for _ in 0..4096 {
                            if sock.write_all(&framed).await.is_err() {
                                break;
                            }
                        }
                    }
                    Answer::HugeLength => {
                        let _ = sock
                            .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 18446744073709551000\r\n\r\n[{\".id\":\"*1\"")
                            .await;
                    }
                }
                let _ = sock.shutdown().await;
            });
        }
    });
    addr
}

fn client_for(addr: &str) -> RestClient {
    let endpoint =
        RestEndpoint::http("router fuzz", addr, Credentials::new("api", PASSWORD)).expect("endpoint");
    let config = ClientConfig {
        connect_timeout: Duration::from_secs(2),
        command_timeout: Duration::from_secs(5),
        connect_attempts: 1,
        cooldown_min: Duration::ZERO,
        max_response_bytes: LIMIT,
        ..ClientConfig::default()
    };
    RestClient::new(endpoint, config).expect("client")
}

/// The outcome of one call: `Ok(())` or the error.
type Outcome = Result<(), RestError>;

/// Every kind of call against `answer`; each must come back (no panic, no hang).
async fn all_calls(answer: Answer) -> Vec<(&'static str, Outcome)> {
    let addr = serve(answer).await;
    let c = client_for(&addr);
    let mut out: Vec<(&'static str, Outcome)> = Vec::new();
    let deadline = Duration::from_secs(20);
    macro_rules! call {
        ($name:literal, $e:expr) => {{
            let r = tokio::time::timeout(deadline, $e)
                .await
                .unwrap_or_else(|_| panic!("{} hung", $name));
            out.push(($name, r.map(|_| ())));
        }};
    }
    call!(
        "print",
        c.print("/ip/hotspot/active", &[".id", "user"], &["user=a"])
    );
    call!("print query", c.print("/ip/hotspot/active", &[], &["-disabled"]));
    call!("get", c.get("/ppp/secret", "*1"));
    call!(
        "add",
        c.add("/ppp/secret", &[("name", "a"), ("password", PASSWORD)])
    );
    call!("set", c.set("/ppp/secret", "*1", &[("disabled", "yes")]));
    call!("remove", c.remove("/ppp/secret", &["*1"]));
    call!("remove several", c.remove("/ppp/secret", &["*1", "*2"]));
    call!(
        "call",
        c.call("/system/resource", "print", serde_json::Map::new())
    );
    out
}

/// The checks every outcome must pass.
fn check_error(what: &str, answer: &str, e: &RestError) {
    let text = e.to_string();
    assert!(!text.is_empty(), "{what} on {answer}: empty error");
    assert!(
        text.len() <= MAX_ERROR_LEN,
        "{what} on {answer}: error text of {} bytes: {}...",
        text.len(),
        text.chars().take(300).collect::<String>()
    );
    assert!(
        !text.contains(PASSWORD),
        "{what} on {answer}: password in the error"
    );
    assert!(
        !format!("{e:?}").contains(PASSWORD),
        "{what} on {answer}: password in the Debug"
    );
}

/// The fixed hostile answers: each name, the answer, and whether every call
/// must fail (false: a call may read it as a valid, empty or partial answer).
fn fixed() -> Vec<(&'static str, Answer, bool)> {
    let deep = |n: usize| {
        let mut v = vec![b'['; n];
        v.extend(std::iter::repeat_n(b']', n));
        v
    };
    let huge_string = {
        let mut v = br#"[{".id":"*1","user":""#.to_vec();
        v.extend(std::iter::repeat_n(b'x', 512 * 1024));
        v.extend_from_slice(br#""}]"#);
        v
    };
    let wide = {
        let mut v = b"[".to_vec();
        for i in 0..20_000 {
            v.extend_from_slice(format!(r#"{{".id":"*{i}","n":{i}}},"#).as_bytes());
        }
        v.extend_from_slice(b"{}]");
        v
    };
    let huge_message = {
        let mut v = br#"{"error":400,"message":""#.to_vec();
        v.extend(std::iter::repeat_n(b'm', 256 * 1024));
        v.extend_from_slice(br#"","detail":""#);
        v.extend(std::iter::repeat_n(b'd', 256 * 1024));
        v.extend_from_slice(br#""}"#);
        v
    };
    let j = |s: &str| s.as_bytes().to_vec();
    vec![
        (
            "truncated JSON",
            Answer::Json(200, j(r#"[{".id":"*1","user":"a"#)),
            true,
        ),
        ("not JSON", Answer::Json(200, j("<html>hello</html>")), true),
        (
            "invalid UTF-8",
            Answer::Json(200, vec![b'[', b'"', 0xff, 0xfe, b'"', b']']),
            true,
        ),
        ("NUL bytes", Answer::Json(200, vec![0; 64]), true),
        ("100,000-deep nesting", Answer::Json(200, deep(100_000)), true),
        ("1e999", Answer::Json(200, j("[{\".id\":1e999}]")), true),
        ("a number", Answer::Json(200, j("42")), false),
        ("a string", Answer::Json(200, j("\"*1\"")), false),
        ("array of numbers", Answer::Json(200, j("[1,2,3]")), false),
        (
            "array of arrays",
            Answer::Json(200, j("[[{\".id\":\"*1\"}]]")),
            false,
        ),
        (
            "nested object values",
            Answer::Json(200, j(r#"[{".id":{"x":[1,{"y":2}]},"user":[]}]"#)),
            false,
        ),
        (
            ".id a number",
            Answer::Json(200, j(r#"{".id":18446744073709551616,"ret":false}"#)),
            false,
        ),
        ("512 KiB value", Answer::Json(200, huge_string), false),
        ("20,000 rows", Answer::Json(200, wide), false),
        (
            "400 with 512 KiB message",
            Answer::Json(400, huge_message.clone()),
            true,
        ),
        ("500 with 512 KiB message", Answer::Json(500, huge_message), true),
        ("401 garbage", Answer::Json(401, vec![0xff; 300]), true),
        (
            "404 wrong types",
            Answer::Json(404, j(r#"{"message":[1],"detail":{"a":1}}"#)),
            true,
        ),
        ("301", Answer::Json(301, j("{}")), true),
        (
            "status 999",
            Answer::Raw(j("HTTP/1.1 999 Odd\r\nContent-Length: 2\r\n\r\n{}")),
            true,
        ),
        ("not HTTP", Answer::Raw(j("SSH-2.0-OpenSSH_9.0\r\n")), true),
        (
            "binary junk",
            Answer::Raw((0..=255u8).cycle().take(5000).collect()),
            true,
        ),
        ("nothing, close", Answer::Raw(Vec::new()), true),
        (
            "head only",
            Answer::Raw(j("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n[{")),
            true,
        ),
        (
            "bad chunk size",
            Answer::Raw(j(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n[]\r\n0\r\n\r\n",
            )),
            true,
        ),
        (
            "64 KiB header",
            Answer::Raw({
                let mut v = j("HTTP/1.1 200 OK\r\nX-A: ");
                v.extend(std::iter::repeat_n(b'a', 64 * 1024));
                v.extend_from_slice(b"\r\nContent-Length: 2\r\n\r\n[]");
                v
            }),
            false,
        ),
        ("endless chunked body", Answer::EndlessChunks, true),
        ("Content-Length 2^64", Answer::HugeLength, true),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_rest_answers_give_clear_errors_without_panics() {
    let mut errors = 0;
    for (name, answer, must_fail) in fixed() {
        let big = matches!(answer, Answer::EndlessChunks | Answer::HugeLength);
        for (what, outcome) in all_calls(answer).await {
            match outcome {
                Ok(()) => assert!(!must_fail, "{what} on {name}: accepted"),
                Err(e) => {
                    errors += 1;
                    check_error(what, name, &e);
                    if big {
                        assert!(
                            matches!(e, RestError::TooLarge { limit: LIMIT, .. }),
                            "{what} on {name}: {e:?}"
                        );
                    }
                }
            }
        }
    }
    assert!(errors > 100, "only {errors} errors");
}

/// Wrong types where an answer is expected: a clear protocol error naming the request.
#[tokio::test]
async fn wrong_types_are_protocol_errors_naming_the_request() {
    let cases = [
        ("add", r#"{"ret":5}"#),
        ("add", r#"{".id":""}"#),
        ("add", "[]"),
        ("print", "[1]"),
        ("print", "true"),
        ("get", "[]"),
    ];
    for (call, body) in cases {
        let addr = serve(Answer::Json(200, body.as_bytes().to_vec())).await;
        let c = client_for(&addr);
        let e = match call {
            "add" => c.add("/ppp/secret", &[("name", "a")]).await.map(|_| ()),
            "print" => c.print("/ppp/secret", &[], &[]).await.map(|_| ()),
            _ => c.get("/ppp/secret", "*1").await.map(|_| ()),
        }
        .expect_err(body);
        assert!(matches!(e, RestError::Protocol { .. }), "{call} {body}: {e:?}");
        assert!(e.to_string().contains("/rest/ppp/secret"), "{call} {body}: {e}");
        check_error(call, body, &e);
    }
}

fn cfg() -> ProptestConfig {
    ProptestConfig {
        cases: 48,
        ..ProptestConfig::default()
    }
}

/// A random JSON-ish body: valid JSON of any shape, or valid JSON cut or mutated.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        any::<f64>().prop_map(|f| serde_json::json!(f)),
        any::<String>().prop_map(serde_json::Value::String),
    ];
    let value = leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::Array),
            proptest::collection::btree_map(
                prop_oneof![Just(".id".to_owned()), Just("ret".to_owned()), "[a-z.]{0,6}"],
                inner,
                0..8
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    });
    (value, any::<u8>(), any::<prop::sample::Index>(), any::<u8>()).prop_map(|(v, how, at, byte)| {
        let mut bytes = serde_json::to_vec(&v).unwrap_or_default();
        if bytes.is_empty() {
            return bytes;
        }
        let i = at.index(bytes.len());
        match how % 4 {
            0 => {}
            1 => bytes.truncate(i),
            2 => bytes[i] = byte,
            _ => bytes.insert(i, byte),
        }
        bytes
    })
}

proptest! {
    #![proptest_config(cfg())]

    #[test]
    fn random_and_mutated_json_bodies_never_panic(
        body in body(),
        status in prop_oneof![Just(200u16), Just(201), Just(400), Just(401), Just(404), Just(500), 100u16..600],
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let shown = format!("{status} {}", String::from_utf8_lossy(&body).chars().take(80).collect::<String>());
            for (what, outcome) in all_calls(Answer::Json(status, body.clone())).await {
                if let Err(e) = outcome {
                    check_error(what, &shown, &e);
                } else {
                    prop_assert!((200..300).contains(&status), "{} on {}: accepted", what, shown);
                }
            }
            Ok(())
        })?;
    }
}

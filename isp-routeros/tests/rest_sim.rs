//! The simulator's REST service spoken to with a plain HTTP client: statuses, bodies, headers,
//! string values, logins per connection, and the same state as the API.
#![cfg(feature = "sim")]
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod client_common;
mod sim_common;

use std::time::Duration;

use client_common::{sim_config, start, PASSWORD, USER};
use isp_routeros::proto::ReplyKind;
use isp_routeros::sim::{tls::self_signed, Via};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sim_common::{rows, Raw};

/// A client that keeps connections alive (the default) or opens one per request.
fn http(keep_alive: bool) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5));
    if !keep_alive {
        b = b.pool_max_idle_per_host(0);
    }
    b.build().unwrap()
}

async fn call(
    client: &reqwest::Client,
    method: Method,
    url: &str,
    body: Option<Value>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut req = client.request(method, url).basic_auth(USER, Some(PASSWORD));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.unwrap();
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("not JSON ({e}): {bytes:?}"))
    };
    (status, headers, value)
}

fn all_strings(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.values().all(Value::is_string),
        Value::Array(items) => items.iter().all(all_strings),
        _ => false,
    }
}

#[tokio::test]
async fn crud_with_string_values_and_router_error_bodies() {
    let sim = start(sim_config()).await;
    let base = format!("{}/rest", sim.rest_url().unwrap());
    let c = http(true);

    // PUT: the created object, with `.id` and every value a string.
    let (status, headers, created) = call(
        &c,
        Method::PUT,
        &format!("{base}/ip/hotspot/user"),
        Some(json!({"name": "alice", "password": "pw", "limit-uptime": "90m", "disabled": false})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(headers["content-type"], "application/json");
    assert!(all_strings(&created), "{created}");
    let id = created[".id"].as_str().unwrap().to_owned();
    assert!(id.starts_with('*'));
    assert_eq!(
        created["limit-uptime"], "1h30m",
        "normalised as the router shows it"
    );
    assert_eq!(created["disabled"], "false");

    // GET the list, with a filter and a proplist; GET one by id and by name.
    let (status, _, list) = call(
        &c,
        Method::GET,
        &format!("{base}/ip/hotspot/user?name=alice&.proplist=.id,name"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list, json!([{".id": id, "name": "alice"}]));
    let (_, _, none) = call(&c, Method::GET, &format!("{base}/ip/hotspot/user?name=bob"), None).await;
    assert_eq!(none, json!([]));
    let (status, _, one) = call(&c, Method::GET, &format!("{base}/ip/hotspot/user/{id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["name"], "alice");
    let (_, _, by_name) = call(&c, Method::GET, &format!("{base}/ip/hotspot/user/alice"), None).await;
    assert_eq!(by_name[".id"], id.as_str());

    // PATCH: the updated object.
    let (status, _, patched) = call(
        &c,
        Method::PATCH,
        &format!("{base}/ip/hotspot/user/{id}"),
        Some(json!({"comment": "isp:sub:1", "disabled": "yes"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(patched["comment"], "isp:sub:1");
    assert_eq!(patched["disabled"], "true");

    // A duplicate: 400 with the trap text in `detail`.
    let (status, _, dup) = call(
        &c,
        Method::PUT,
        &format!("{base}/ip/hotspot/user"),
        Some(json!({"name": "alice"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        dup,
        json!({"error": 400, "message": "Bad Request", "detail": "failure: already have user with this name for this server"})
    );
    // A bad value.
    let (status, _, bad) = call(
        &c,
        Method::PUT,
        &format!("{base}/ip/hotspot/user"),
        Some(json!({"name": "bob", "limit-uptime": "soon"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(bad["detail"], "invalid time value for argument limit-uptime");

    // DELETE: empty; again: 404 Not Found without detail.
    let (status, _, body) = call(&c, Method::DELETE, &format!("{base}/ip/hotspot/user/{id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(body, Value::Null);
    let (status, _, again) = call(&c, Method::DELETE, &format!("{base}/ip/hotspot/user/{id}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(again, json!({"error": 404, "message": "Not Found"}));
    let (status, _, _) = call(
        &c,
        Method::PATCH,
        &format!("{base}/ip/hotspot/user/{id}"),
        Some(json!({"comment": "x"})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = call(&c, Method::GET, &format!("{base}/ip/hotspot/user/{id}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Unknown paths and commands: the router's detail.
    let (status, _, unknown) = call(&c, Method::GET, &format!("{base}/ip/frobnicate"), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        unknown,
        json!({"error": 400, "message": "Bad Request", "detail": "no such command or directory (frobnicate)"})
    );
    let (status, _, unknown) = call(
        &c,
        Method::POST,
        &format!("{base}/ppp/active/disable"),
        Some(json!({".id": "*1"})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_ACCEPTABLE);
    assert_eq!(
        unknown,
        json!({"error": 406, "message": "Not Acceptable", "detail": "no such command or directory (disable)"})
    );
    let (status, _, _) = call(
        &c,
        Method::PUT,
        &format!("{base}/ip/hotspot/user"),
        Some(json!([1])),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn post_commands_print_with_query_and_add_with_ret() {
    let sim = start(sim_config()).await;
    let handle = sim.handle();
    let base = format!("{}/rest", sim.rest_url().unwrap());
    let c = http(true);
    for (list, address) in [("a", "10.0.0.1"), ("b", "10.0.0.2"), ("c", "10.0.0.3")] {
        handle
            .add_row(
                "/ip/firewall/address-list",
                &[("list", list), ("address", address)],
            )
            .unwrap();
    }
    let (status, _, found) = call(
        &c,
        Method::POST,
        &format!("{base}/ip/firewall/address-list/print"),
        Some(json!({".proplist": ["list"], ".query": ["list=a", "list=c", "#|"]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found, json!([{"list": "a"}, {"list": "c"}]));
    let (_, _, nothing) = call(
        &c,
        Method::POST,
        &format!("{base}/ip/firewall/address-list/print"),
        Some(json!({".query": ["list=zzz"]})),
    )
    .await;
    assert_eq!(nothing, json!([]));

    let (status, _, added) = call(
        &c,
        Method::POST,
        &format!("{base}/ip/firewall/address-list/add"),
        Some(json!({"list": "d", "address": "10.0.0.4"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let id = added["ret"].as_str().unwrap().to_owned();
    let (status, _, done) = call(
        &c,
        Method::POST,
        &format!("{base}/ip/firewall/address-list/remove"),
        Some(json!({".id": id})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(done, json!([]));
    // `no such item` through a command: 400 with the trap text.
    let (status, _, gone) = call(
        &c,
        Method::POST,
        &format!("{base}/ip/firewall/address-list/remove"),
        Some(json!({".id": id})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(gone["detail"], "no such item");

    // Single-item menus answer with an object.
    let (_, _, identity) = call(&c, Method::GET, &format!("{base}/system/identity"), None).await;
    assert_eq!(identity, json!({"name": "MikroTik"}));
    let (_, _, resource) = call(&c, Method::GET, &format!("{base}/system/resource"), None).await;
    assert!(all_strings(&resource), "{resource}");
    assert!(resource["version"].as_str().unwrap().starts_with("7."));
}

#[tokio::test]
async fn basic_auth_and_one_login_per_connection() {
    let sim = start(sim_config()).await;
    let handle = sim.handle();
    let url = format!("{}/rest/system/identity", sim.rest_url().unwrap());

    for (user, password) in [(USER, "wrong"), ("nobody", PASSWORD)] {
        let resp = http(true)
            .get(&url)
            .basic_auth(user, Some(password))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(resp.headers()["www-authenticate"], "Basic realm=\"REST API\"");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body, json!({"error": 401, "message": "Unauthorized"}));
    }
    let resp = http(true).get(&url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "no credentials");
    assert_eq!(handle.rest_logins(), 0);
    // Outside /rest: not found.
    let resp = http(true)
        .get(url.replace("/rest/system/identity", "/webfig/"))
        .basic_auth(USER, Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // Keep-alive: ten requests, one connection, one login.
    let keep = http(true);
    for _ in 0..10 {
        let (status, _, _) = call(&keep, Method::GET, &url, None).await;
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(handle.rest_logins(), 1);
    // A client that opens a connection per request logs in every time: what the driver avoids.
    let fresh = http(false);
    for _ in 0..5 {
        call(&fresh, Method::GET, &url, None).await;
    }
    assert_eq!(handle.rest_logins(), 6);
    assert_eq!(handle.logins(), 6, "REST logins count as logins");
    let conns: std::collections::BTreeSet<u64> = handle
        .command_log()
        .iter()
        .filter(|c| matches!(&c.via, Via::Rest { method, .. } if method == "GET"))
        .map(|c| c.connection)
        .collect();
    assert!(conns.len() >= 6, "{conns:?}");
}

#[tokio::test]
async fn one_state_for_api_and_rest_and_https() {
    let cert = self_signed(&["localhost", "127.0.0.1"]).unwrap();
    let mut config = sim_config();
    config.rest_tls = Some(cert.server_config.clone());
    let mut sim = start(config).await;
    // A second, plain-HTTP listener on the same router.
    let plain = sim
        .serve_rest("127.0.0.1:0".parse().unwrap(), None)
        .await
        .unwrap();
    assert_eq!(sim.rest_listeners().len(), 2);
    assert!(sim.rest_listeners()[0].tls && !sim.rest_listeners()[1].tls);

    // Add over the API ...
    let mut raw = Raw::connect(sim.addr()).await;
    raw.login(USER, PASSWORD).await;
    let r = raw
        .call(&[
            "/ppp/secret/add",
            "=name=cust-1",
            "=password=pw",
            "=comment=isp:svc:1",
        ])
        .await;
    let id = r[0].get("ret").unwrap().to_owned();

    // ... read over HTTPS (trusting the simulator's certificate) ...
    let root = reqwest::Certificate::from_der(&cert.cert_der).unwrap();
    let https = reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(root)
        .build()
        .unwrap();
    let secure = format!("{}/rest", sim.rest_url().unwrap());
    assert!(secure.starts_with("https://"));
    let (status, _, secrets) = call(&https, Method::GET, &format!("{secure}/ppp/secret"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(secrets[0][".id"], id.as_str());
    assert_eq!(secrets[0]["comment"], "isp:svc:1");

    // ... remove over plain HTTP, and the API sees it gone.
    let (status, _, _) = call(
        &http(true),
        Method::DELETE,
        &format!("http://{plain}/rest/ppp/secret/{id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let r = raw.call(&["/ppp/secret/print"]).await;
    assert!(rows(&r).is_empty());
    assert!(r.iter().any(|x| x.kind == ReplyKind::Empty));
    let removal = sim.handle().removals().pop().unwrap();
    assert_eq!(removal.menu, "/ppp/secret");

    // Plain HTTP to the HTTPS listener gets no REST answer.
    let https_addr = sim.rest_listeners()[0].addr;
    let err = http(true)
        .get(format!("http://{https_addr}/rest/system/identity"))
        .basic_auth(USER, Some(PASSWORD))
        .send()
        .await;
    assert!(err.is_err() || !err.unwrap().status().is_success());
    sim.shutdown().await;
}

#[tokio::test]
async fn faults_reach_rest_too() {
    let sim = start(sim_config()).await;
    let handle = sim.handle();
    let url = format!("{}/rest/ip/hotspot/active", sim.rest_url().unwrap());
    let c = http(true);
    call(&c, Method::GET, &url, None).await;

    handle.http_error_on("/ip/hotspot/active/print", 503);
    let (status, _, body) = call(&c, Method::GET, &url, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"], 503);
    handle.clear_faults();

    handle.trap_on("/ip/hotspot/active/print", "failure: table locked");
    let (status, _, body) = call(&c, Method::GET, &url, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["detail"], "failure: table locked");
    handle.clear_faults();

    // drop_connections closes kept-alive REST connections too; the client reconnects.
    let before = handle.rest_logins();
    handle.drop_connections();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (status, _, _) = call(&c, Method::GET, &url, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(handle.rest_logins(), before + 1);

    // An outage closes the REST port as well.
    handle.outage(Duration::from_millis(500));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let err = http(true)
        .get(&url)
        .basic_auth(USER, Some(PASSWORD))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect() || err.is_request(), "{err:?}");
    tokio::time::sleep(Duration::from_millis(700)).await;
    let (status, _, _) = call(&http(true), Method::GET, &url, None).await;
    assert_eq!(status, StatusCode::OK);

    // Latency applies to REST replies.
    handle.set_latency(Duration::from_millis(300));
    let started = std::time::Instant::now();
    call(&c, Method::GET, &url, None).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn cost_grows_with_the_items_a_rest_request_prints_or_names() {
    let item = Duration::from_millis(20);
    let per_command = Duration::from_millis(30);
    let mut config = sim_config();
    config.cost_per_command = per_command;
    config.cost_per_item = item;
    let sim = start(config).await;
    let h = sim.handle();
    for i in 1..=30 {
        h.add_row("/ip/hotspot/user", &[("name", &format!("u{i}"))])
            .unwrap();
    }
    let base = format!("{}/rest", sim.rest_url().unwrap());
    let c = http(true);

    let started = std::time::Instant::now();
    let (status, _, all) = call(&c, Method::GET, &format!("{base}/ip/hotspot/user"), None).await;
    let thirty = started.elapsed();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(all.as_array().map(Vec::len), Some(30));
    assert!(thirty >= per_command + item * 30, "{thirty:?}");

    let started = std::time::Instant::now();
    let (status, _, _) = call(&c, Method::DELETE, &format!("{base}/ip/hotspot/user/*1"), None).await;
    let one = started.elapsed();
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(one >= per_command + item, "{one:?}");
    assert!(
        one < thirty,
        "one item ({one:?}) costs less than thirty ({thirty:?})"
    );
    let removed = h.removals();
    assert_eq!(removed.len(), 1);
    assert!(removed[0].instant >= started + per_command + item);
}

//! Times the simulator's lookups on one router with many hotspot users: adding a user (its
//! uniqueness check), a device logging in and out (user, host and cookie lookups, and the
//! `tick` that follows every change), and a `print ?name=` over the API.
//!
//! `cargo run --release -p isp-routeros --features sim --example sim_lookups -- 1000000`

use std::time::{Duration, Instant};

use isp_routeros::client::{ClientConfig, Connection, Credentials, Endpoint};
use isp_routeros::proto::Request;
use isp_routeros::sim::{SimConfig, SimRouter};

const OPS: u32 = 1_000;

fn per_op(total: Duration) -> String {
    format!("{:.1} µs", total.as_secs_f64() * 1e6 / f64::from(OPS))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let users: u32 = match std::env::args().nth(1) {
        Some(n) => n
            .parse()
            .map_err(|e| format!("users: {n:?} is not a count ({e})"))?,
        None => 100_000,
    };
    let router = SimRouter::start(SimConfig::new("admin", "pw"), "127.0.0.1:0".parse()?).await?;
    let h = router.handle();
    let started = Instant::now();
    for i in 0..users {
        h.add_row(
            "/ip/hotspot/user",
            &[("name", &format!("u{i}")), ("limit-uptime", "1d")],
        )?;
    }
    let load = started.elapsed();
    println!(
        "{users} users: loaded in {:.2} s ({:.1} µs per add)",
        load.as_secs_f64(),
        load.as_secs_f64() * 1e6 / f64::from(users.max(1))
    );

    let started = Instant::now();
    for i in 0..OPS {
        h.add_row("/ip/hotspot/user", &[("name", &format!("extra{i}"))])?;
    }
    println!("add one more user: {}", per_op(started.elapsed()));

    let step = (users / OPS).max(1);
    let started = Instant::now();
    for k in 0..OPS {
        let i = (k * step) % users.max(1);
        let mac = format!(
            "02:00:00:{:02X}:{:02X}:{:02X}",
            (i >> 16) & 255,
            (i >> 8) & 255,
            i & 255
        );
        h.hotspot_login(&format!("u{i}"), &mac, "10.0.0.2")?;
    }
    println!("hotspot login: {}", per_op(started.elapsed()));
    let started = Instant::now();
    for k in 0..OPS {
        let i = (k * step) % users.max(1);
        h.hotspot_logout(&format!("u{i}"));
    }
    println!("hotspot logout by user: {}", per_op(started.elapsed()));

    let endpoint = Endpoint::plain("sim", &router.addr().to_string(), Credentials::new("admin", "pw"))?;
    let conn = Connection::connect(&endpoint, &ClientConfig::default()).await?;
    let started = Instant::now();
    for k in 0..OPS {
        let i = (k * step) % users.max(1);
        let req = Request::new("/ip/hotspot/user/print").query(format!("name=u{i}"));
        let found = conn.run(req).await?;
        if found.rows.len() != 1 {
            return Err(format!("print ?name=u{i} found {} items", found.rows.len()).into());
        }
    }
    println!(
        "API print ?name= (one round trip each): {}",
        per_op(started.elapsed())
    );
    router.shutdown().await;
    Ok(())
}

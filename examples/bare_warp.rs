//! The ceiling for the HTTP load benchmark (benches/load.sh): a bare warp server with one
//! route returning a small JSON, like an empty poll's reply. Usage: `bare_warp PORT`.

use warp::Filter;

#[tokio::main]
async fn main() {
    let port: u16 = std::env::args().nth(1).and_then(|p| p.parse().ok()).unwrap_or(18090);
    let route = warp::path!("poll").map(|| {
        warp::reply::json(&serde_json::json!({"target": "chan-001", "messages": [], "latest_id": 9991}))
    });
    warp::serve(route).run(([127, 0, 0, 1], port)).await;
}

//! A `wasi:http` proxy component: `basalt serve` answers each request
//! with a fresh instance of it.
//!
//! - `GET /` answers `Hello from Basalt!` with the method and path;
//! - `POST /echo` streams the request body back;
//! - `GET /trap` panics (the instance traps before it answers);
//! - `GET /loop` spins forever (its deadline stops it);
//! - `GET /grow` allocates without end (its memory limit stops it);
//! - `GET /sleep?ms=N` answers after N milliseconds;
//! - anything else is 404.

use std::io::Write as _;

use wasip2::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

wasip2::http::proxy::export!(Handler);

struct Handler;

/// Sends `status` with `body` on `out`.
fn answer(out: ResponseOutparam, status: u16, body: &[u8]) {
    let resp = OutgoingResponse::new(
        Fields::from_list(&[("content-type".into(), b"text/plain".to_vec())]).unwrap(),
    );
    resp.set_status_code(status).unwrap();
    let b = resp.body().unwrap();
    ResponseOutparam::set(out, Ok(resp));
    let mut w = b.write().unwrap();
    w.write_all(body).unwrap();
    w.flush().unwrap();
    drop(w);
    OutgoingBody::finish(b, None).unwrap();
}

impl wasip2::exports::http::incoming_handler::Guest for Handler {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        let method = request.method();
        let (route, query) = path.split_once('?').unwrap_or((&path, ""));
        match (&method, route) {
            (Method::Get, "/") => {
                let text = format!("Hello from Basalt! GET {path}\n");
                answer(out, 200, text.as_bytes());
            }
            (Method::Post, "/echo") => {
                let body = request.consume().unwrap();
                let mut input = body.stream().unwrap();
                let resp = OutgoingResponse::new(Fields::new());
                let ob = resp.body().unwrap();
                ResponseOutparam::set(out, Ok(resp));
                let mut w = ob.write().unwrap();
                let mut buf = vec![0u8; 64 << 10];
                loop {
                    match std::io::Read::read(&mut input, &mut buf) {
                        Ok(0) => break,
                        Ok(n) => w.write_all(&buf[..n]).unwrap(),
                        Err(e) => panic!("reading the request body: {e}"),
                    }
                }
                w.flush().unwrap();
                drop(w);
                drop(input);
                OutgoingBody::finish(ob, None).unwrap();
            }
            (Method::Get, "/trap") => panic!("this handler traps on purpose"),
            (Method::Get, "/loop") => loop {
                std::hint::black_box(());
            },
            (Method::Get, "/grow") => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            (Method::Get, "/sleep") => {
                let ms: u64 = query
                    .strip_prefix("ms=")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(100);
                wasip2::clocks::monotonic_clock::subscribe_duration(ms * 1_000_000).block();
                answer(out, 200, format!("slept {ms} ms\n").as_bytes());
            }
            _ => answer(out, 404, b"not found\n"),
        }
    }
}

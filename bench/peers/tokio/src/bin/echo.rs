// Tokio echo server for weft's tcp_echo benchmark (bench/run). The same
// command line as weft's examples/echo_server (README, "Server workloads"):
//
//   weft-peer-tokio-echo --port P [--host 127.0.0.1] [--workers N]
//
// Multi-thread runtime with `worker_threads = N`; one task per connection
// that reads up to 4 KiB and writes back what it read (`read` + `write_all`,
// as in Tokio's own echo example), TCP_NODELAY on every accepted socket.
// Prints "listening on HOST:PORT" once bound; runs until killed.

use std::io::Write;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Builder;

fn usage(msg: &str) -> ! {
    eprintln!("weft-peer-tokio-echo: {msg}");
    eprintln!("usage: weft-peer-tokio-echo --port P [--host 127.0.0.1] [--workers N]");
    std::process::exit(2);
}

async fn serve(mut sock: TcpStream) {
    let _ = sock.set_nodelay(true);
    let mut buf = vec![0u8; 4096];
    loop {
        let n = match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if sock.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

fn main() {
    let mut host = String::from("127.0.0.1");
    let mut port: Option<u16> = None;
    let mut workers: usize = 2;
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let key = argv[i].as_str();
        let val = argv
            .get(i + 1)
            .unwrap_or_else(|| usage(&format!("missing value for {key}")));
        match key {
            "--host" => host = val.clone(),
            "--port" => port = Some(val.parse().unwrap_or_else(|_| usage(&format!("bad port {val}")))),
            "--workers" => {
                workers = val.parse().unwrap_or_else(|_| usage(&format!("bad workers {val}")))
            }
            _ => usage(&format!("unknown option {key}")),
        }
        i += 2;
    }
    let port = port.unwrap_or_else(|| usage("--port is required"));
    if workers == 0 {
        usage("--workers must be >= 1");
    }
    let rt = Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_io()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let listener = TcpListener::bind((host.as_str(), port))
            .await
            .unwrap_or_else(|e| usage(&format!("bind {host}:{port}: {e}")));
        let addr = listener.local_addr().expect("local_addr");
        println!("listening on {addr}");
        let _ = std::io::stdout().flush();
        loop {
            match listener.accept().await {
                Ok((sock, _)) => {
                    tokio::spawn(serve(sock));
                }
                Err(e) => eprintln!("weft-peer-tokio-echo: accept: {e}"),
            }
        }
    });
}

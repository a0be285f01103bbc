//! The control socket: a root-only unix stream socket (mode 0600 in a 0700
//! directory, peer uid checked with SO_PEERCRED) speaking one JSON request
//! line per connection; the daemon answers with one JSON line, or a stream
//! of lines for `trace`.
//!
//! ```text
//! {"cmd":"status"}                       -> {"ok":true,"status":{...}}
//! {"cmd":"standby","which":"all"}        -> {"ok":true,"groups":[0,1]}
//! {"cmd":"takeover","which":"foreign"}   -> {"ok":true,"groups":[1]}
//! {"cmd":"cleanup","group":null}         -> {"ok":true,"groups":[0,1]}
//! {"cmd":"gaps"}                         -> {"ok":true,"gaps":{...}}
//! {"cmd":"trace"}                        -> {"ok":true} then one event per line
//! ```

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{UnixListener, UnixStream},
    sync::{mpsc, oneshot},
};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    Status,
    Standby { which: String },
    Takeover { which: String },
    Cleanup { group: Option<usize> },
    Gaps,
    Trace,
}

/// What the engine answers.
pub enum Reply {
    Json(serde_json::Value),
    /// A stream of JSON lines (trace).
    Stream(tokio::sync::broadcast::Receiver<String>),
}

/// A request with the channel for its reply.
pub struct Incoming {
    pub req: Request,
    pub reply: oneshot::Sender<Reply>,
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("another hb is already running with control socket {0}")]
    InUse(PathBuf),
    #[error("control socket {path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    #[error("cannot reach the hb daemon at {path}: {err} (is `hb run` running? started with the same --socket / control_socket?)")]
    Connect { path: PathBuf, err: std::io::Error },
    #[error("the daemon's answer is not valid JSON: {0}")]
    BadReply(String),
    #[error("{0}")]
    Daemon(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ControlError + '_ {
    move |err| ControlError::Io {
        path: path.to_path_buf(),
        err,
    }
}

/// Creates the socket (refusing to steal a live one) and serves requests
/// into `tx` until the listener is dropped.
pub async fn serve(
    path: &Path,
    tx: mpsc::Sender<Incoming>,
) -> Result<tokio::task::JoinHandle<()>, ControlError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(path))?;
        if dir != Path::new("/tmp") && dir != Path::new("/run") {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(io(path))?;
        }
    }
    if path.exists() {
        if UnixStream::connect(path).await.is_ok() {
            return Err(ControlError::InUse(path.to_path_buf()));
        }
        std::fs::remove_file(path).map_err(io(path))?;
    }
    let listener = UnixListener::bind(path).map_err(io(path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io(path))?;
    let me = nix::unistd::geteuid().as_raw();
    Ok(tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            match stream.peer_cred() {
                Ok(c) if c.uid() == 0 || c.uid() == me => {}
                _ => {
                    log::warn!("control socket: refused a client that is not root");
                    continue;
                }
            }
            let tx = tx.clone();
            tokio::spawn(async move {
                if let Err(e) = handle(stream, tx).await {
                    log::debug!("control client: {e}");
                }
            });
        }
    }))
}

async fn handle(stream: UnixStream, tx: mpsc::Sender<Incoming>) -> std::io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut line = String::new();
    BufReader::new(r).read_line(&mut line).await?;
    let req: Request = match serde_json::from_str(line.trim()) {
        Ok(r) => r,
        Err(e) => {
            let msg = serde_json::json!({"ok": false, "error": format!("bad request: {e}")});
            w.write_all(format!("{msg}\n").as_bytes()).await?;
            return Ok(());
        }
    };
    let (rtx, rrx) = oneshot::channel();
    if tx.send(Incoming { req, reply: rtx }).await.is_err() {
        return Ok(());
    }
    match rrx.await {
        Ok(Reply::Json(v)) => w.write_all(format!("{v}\n").as_bytes()).await?,
        Ok(Reply::Stream(mut rx)) => {
            w.write_all(b"{\"ok\":true}\n").await?;
            loop {
                match rx.recv().await {
                    Ok(l) => w.write_all(format!("{l}\n").as_bytes()).await?,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        w.write_all(format!("{{\"lagged\":{n}}}\n").as_bytes())
                            .await?
                    }
                    Err(_) => break,
                }
            }
        }
        Err(_) => {}
    }
    Ok(())
}

/// Client side: sends `req` and returns the first reply line.
pub async fn request(path: &Path, req: &Request) -> Result<serde_json::Value, ControlError> {
    let (mut lines, _w) = open(path, req).await?;
    let Some(l) = lines.next_line().await.map_err(io(path))? else {
        return Err(ControlError::BadReply("connection closed".into()));
    };
    let v: serde_json::Value =
        serde_json::from_str(&l).map_err(|_| ControlError::BadReply(l.clone()))?;
    if v["ok"] != serde_json::Value::Bool(true) {
        return Err(ControlError::Daemon(
            v["error"].as_str().unwrap_or("unknown error").to_string(),
        ));
    }
    Ok(v)
}

/// Client side: sends `req` and returns the reply lines (for streams).
pub async fn open(
    path: &Path,
    req: &Request,
) -> Result<
    (
        tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>,
        tokio::net::unix::OwnedWriteHalf,
    ),
    ControlError,
> {
    let s = UnixStream::connect(path)
        .await
        .map_err(|err| ControlError::Connect {
            path: path.to_path_buf(),
            err,
        })?;
    let (r, mut w) = s.into_split();
    let line = serde_json::to_string(req).expect("requests serialize");
    w.write_all(format!("{line}\n").as_bytes())
        .await
        .map_err(io(path))?;
    Ok((BufReader::new(r).lines(), w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_wire_format() {
        let cases = [
            (Request::Status, r#"{"cmd":"status"}"#),
            (
                Request::Standby {
                    which: "all".into(),
                },
                r#"{"cmd":"standby","which":"all"}"#,
            ),
            (
                Request::Cleanup { group: Some(2) },
                r#"{"cmd":"cleanup","group":2}"#,
            ),
            (Request::Trace, r#"{"cmd":"trace"}"#),
        ];
        for (r, s) in cases {
            assert_eq!(serde_json::to_string(&r).unwrap(), s);
            assert_eq!(serde_json::from_str::<Request>(s).unwrap(), r);
        }
    }

    #[tokio::test]
    async fn serve_answers_and_refuses_a_second_server() {
        let path = std::env::temp_dir().join(format!("hb-ctl-{}/hb.sock", std::process::id()));
        let (tx, mut rx) = mpsc::channel(4);
        let _srv = serve(&path, tx.clone()).await.unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert!(matches!(
            serve(&path, tx).await,
            Err(ControlError::InUse(_))
        ));
        tokio::spawn(async move {
            while let Some(inc) = rx.recv().await {
                let v = match inc.req {
                    Request::Status => serde_json::json!({"ok": true, "node": "alpha"}),
                    _ => serde_json::json!({"ok": false, "error": "nope"}),
                };
                let _ = inc.reply.send(Reply::Json(v));
            }
        });
        let v = request(&path, &Request::Status).await.unwrap();
        assert_eq!(v["node"], "alpha");
        let e = request(&path, &Request::Gaps).await.unwrap_err();
        assert_eq!(e.to_string(), "nope");
        // A raw bad line gets a clear error.
        let mut s = UnixStream::connect(&path).await.unwrap();
        s.write_all(b"{\"cmd\":\"explode\"}\n").await.unwrap();
        let mut l = String::new();
        BufReader::new(s).read_line(&mut l).await.unwrap();
        assert!(l.contains("bad request: unknown variant `explode`"), "{l}");
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }
}

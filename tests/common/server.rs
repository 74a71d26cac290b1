//! A `transduce serve` process for tests, on a free loopback port, and tiny model directories
//! for it.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use transduce::search::{Alignment, DecodeOptions, SearchSettings};

pub use super::tiny_hf;
use super::TempDir;

/// A copy of the tiny Marian model recorded as translating `source` → `target` (or with no
/// languages recorded).
pub fn model_copy(dir: &Path, name: &str, languages: Option<(&str, &str)>) {
    let to = dir.join(name);
    std::fs::create_dir_all(&to).unwrap();
    for entry in std::fs::read_dir(tiny_hf()).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
    }
    let config = to.join("tokenizer_config.json");
    let mut value: Value = serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    let fields = value.as_object_mut().unwrap();
    match languages {
        Some((s, t)) => {
            fields.insert("source_lang".into(), json!(s));
            fields.insert("target_lang".into(), json!(t));
        }
        None => {
            fields.remove("source_lang");
            fields.remove("target_lang");
        }
    }
    std::fs::write(&config, value.to_string()).unwrap();
}

/// A server process on a free loopback port, killed on drop.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub log: std::sync::Arc<std::sync::Mutex<String>>,
    /// The thread that appends the rest of stderr to `log` once the process closes it.
    log_reader: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    pub fn start(models: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_transduce"))
            .args(["serve", "--models", models.to_str().unwrap(), "--port", "0", "--threads", "2"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the transduce binary runs");
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut port = None;
        while port.is_none() && Instant::now() < deadline {
            let mut line = String::new();
            if stderr.read_line(&mut line).unwrap() == 0 {
                panic!("the server stopped before listening: {}", log.lock().unwrap());
            }
            log.lock().unwrap().push_str(&line);
            if let Some(at) = line.find("listening on http://127.0.0.1:") {
                port = line[at + 30..].trim().parse().ok();
            }
        }
        let sink = log.clone();
        let log_reader = std::thread::spawn(move || {
            let mut rest = String::new();
            let _ = stderr.read_to_string(&mut rest);
            sink.lock().unwrap().push_str(&rest);
        });
        Server { child, port: port.expect("the server said where it listens"), log, log_reader: Some(log_reader) }
    }

    /// Waits for the process to exit on its own; its exit status and everything it wrote to
    /// stderr (the reader thread is joined, so the log is complete).
    pub fn wait_for_exit(&mut self) -> (std::process::ExitStatus, String) {
        let status = self.child.wait().expect("the server process can be waited for");
        if let Some(reader) = self.log_reader.take() {
            reader.join().expect("the log reader does not panic");
        }
        (status, self.log.lock().unwrap().clone())
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// (status, JSON body, Retry-After) of a JSON POST.
    pub fn post_json(&self, path: &str, body: &Value) -> (u16, Value, Option<String>) {
        answer(ureq::post(&self.url(path)).send_json(body.clone()))
    }

    pub fn post_form(&self, path: &str, pairs: &[(&str, &str)]) -> (u16, Value, Option<String>) {
        answer(ureq::post(&self.url(path)).send_form(pairs))
    }

    pub fn get(&self, path: &str) -> (u16, Value, Option<String>) {
        answer(ureq::get(&self.url(path)).call())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn answer(r: Result<ureq::Response, ureq::Error>) -> (u16, Value, Option<String>) {
    let response = match r {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("no answer: {e}"),
    };
    let status = response.status();
    let retry = response.header("retry-after").map(str::to_string);
    let text = response.into_string().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)), retry)
}

/// Tiny models for fr → en and en → de.
pub fn models_dir(tag: &str) -> TempDir {
    let dir = TempDir::new(tag);
    model_copy(&dir.0, "fr-en", Some(("fr", "en")));
    model_copy(&dir.0, "en-de", Some(("en", "de")));
    dir
}

/// The server's search with no search flags: `transduce translate`'s defaults (beam 5, GNMT 0.6).
pub fn default_search() -> DecodeOptions {
    SearchSettings::default().decode_options(Alignment::Off, 4096).expect("the defaults are valid")
}

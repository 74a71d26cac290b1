//! The server's page in headless Chromium, driven over the DevTools protocol as a user would:
//! type a sentence, read the translation (the library's), open "see inside" and find the
//! explainer of that sentence in the panel; no script errors on the way.

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use transduce::Translator;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use common::server::{default_search, models_dir, Server};
use common::TempDir;

/// A headless Chromium with its DevTools endpoint, killed on drop.
struct Browser {
    child: Child,
    port: u16,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    fn start(binary: &str, profile: &std::path::Path) -> Browser {
        let mut child = Command::new(binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-port=0",
                "--window-size=1280,1000",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chromium starts");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let needle = "DevTools listening on ws://127.0.0.1:";
        let mut port = None;
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(at) = line.find(needle) {
                port = line[at + needle.len()..].split('/').next().and_then(|p| p.parse().ok());
                break;
            }
        }
        // keep reading, so that the browser never blocks on a full pipe
        std::thread::spawn(move || lines.for_each(drop));
        Browser { child, port: port.expect("chromium printed its DevTools address") }
    }

    /// The DevTools connection of the open page.
    fn page(&self) -> Page {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let list: Value = ureq::get(&format!("http://127.0.0.1:{}/json/list", self.port))
                .call()
                .ok()
                .and_then(|r| r.into_json().ok())
                .unwrap_or(Value::Null);
            let target = list.as_array().and_then(|l| l.iter().find(|t| t["type"] == "page"));
            if let Some(url) = target.and_then(|t| t["webSocketDebuggerUrl"].as_str()) {
                let (socket, _) = tungstenite::connect(url).expect("the page's DevTools socket");
                return Page { socket, next: 0, errors: Vec::new() };
            }
            assert!(Instant::now() < deadline, "no page target: {list}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

struct Page {
    socket: WebSocket<MaybeTlsStream<TcpStream>>,
    next: u64,
    /// Exceptions and console errors seen.
    errors: Vec<String>,
}

impl Page {
    /// Sends a DevTools command and waits for its result, noting errors among the events.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        self.socket.send(Message::text(json!({"id": id, "method": method, "params": params}).to_string())).unwrap();
        loop {
            let Message::Text(text) = self.socket.read().unwrap() else { continue };
            let message: Value = serde_json::from_str(&text).unwrap();
            match message["method"].as_str() {
                Some("Runtime.exceptionThrown") => self.errors.push(message["params"]["exceptionDetails"].to_string()),
                Some("Runtime.consoleAPICalled") if message["params"]["type"] == "error" => {
                    self.errors.push(message["params"]["args"].to_string())
                }
                _ => {}
            }
            if message["id"] == id {
                assert!(message.get("error").is_none(), "{method}: {message}");
                return message["result"].clone();
            }
        }
    }

    fn eval(&mut self, expression: &str) -> Value {
        let r = self
            .call("Runtime.evaluate", json!({"expression": expression, "returnByValue": true, "awaitPromise": true}));
        assert!(r.get("exceptionDetails").is_none(), "{expression}: {r}");
        r["result"]["value"].clone()
    }

    /// Evaluates `expression` until it is truthy (at most 30 s).
    fn wait_for(&mut self, expression: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let v = self.eval(expression);
            if !(v.is_null() || v == json!(false) || v == json!("") || v == json!(0)) {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {expression}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A real mouse click at the centre of the element with `id`.
    fn click(&mut self, id: &str) {
        let rect = self.eval(&format!(
            "(() => {{ const r = document.getElementById('{id}').getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()"
        ));
        let (x, y) = (rect[0].as_f64().unwrap(), rect[1].as_f64().unwrap());
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            );
        }
    }
}

#[test]
fn the_page_translates_as_you_type_and_shows_inside_the_model() {
    let Some(binary) = common::browser() else { return };
    let dir = models_dir("serve-page");
    let server = Server::start(&dir.0, &[]);
    let profile = TempDir::new("serve-page-profile");
    let browser = Browser::start(binary, &profile.0);
    let mut page = browser.page();
    page.call("Runtime.enable", json!({}));
    page.call("Page.enable", json!({}));
    page.call("Page.navigate", json!({"url": server.url("/")}));
    page.wait_for("document.body && document.body.dataset.ready === 'yes'");
    // the pickers hold the models' languages
    let sources = page.eval("[...document.getElementById('source-lang').options].map(o => o.value)");
    assert_eq!(sources, json!(["auto", "en", "fr"]));
    page.eval("document.getElementById('source-lang').value = 'fr'; document.getElementById('source-lang').dispatchEvent(new Event('change')); true");
    page.eval("document.getElementById('target-lang').value = 'en'; document.getElementById('target-lang').dispatchEvent(new Event('change')); true");

    // type, as a user does: the debounced request answers with the library's translation
    let sentence = "Une femme aime le chien près de l'hôtel !";
    page.click("source");
    page.call("Input.insertText", json!({"text": sentence}));
    page.wait_for("Number(document.body.dataset.translations || 0) >= 1");
    let shown = page.eval("document.getElementById('translation').textContent");
    let opts = default_search();
    let translator = Translator::load(&dir.0.join("fr-en")).unwrap();
    let expected = translator.translate(&[sentence], &opts).unwrap()[0].text().to_string();
    assert_eq!(shown, json!(expected));
    let alternatives = page.eval("document.querySelectorAll('#alternatives li').length").as_u64().unwrap();
    assert!(alternatives >= 1, "no alternatives listed");

    // open the panel: the explainer of the sentence, drawn
    page.click("inside");
    assert_eq!(page.eval("document.getElementById('inside').getAttribute('aria-expanded')"), json!("true"));
    page.wait_for(
        "(() => { const d = document.getElementById('inside-frame').contentDocument; \
         return d && d.body && d.body.getAttribute('data-ready') === 'yes'; })()",
    );
    let frame = page.eval("document.getElementById('inside-frame').contentDocument.body.innerHTML");
    let frame = frame.as_str().unwrap();
    for part in
        ["Encoder self-attention", "Context map", "Masked self-attention", "Cross-attention", "Alignment", "candidates"]
    {
        assert!(frame.contains(part), "the panel lacks {part:?}");
    }
    assert!(
        frame.contains(&expected.replace('\'', "&#39;")) || frame.contains(&expected),
        "the panel shows another translation"
    );
    assert!(frame.matches("class=\"heatmap").count() > 4, "heatmaps missing");
    assert!(frame.contains(">▁chien</text>"), "source token labels missing");
    assert!(page.errors.is_empty(), "script errors: {:?}", page.errors);
    drop(browser);
    drop(server);
}

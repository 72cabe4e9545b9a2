//! A minimal MCP streamable-HTTP client for behaviour and attack tests:
//! raw JSON-RPC over reqwest, so tests can send what a real client never
//! would (bad tokens, foreign Host/Origin, broken bodies) and see the HTTP
//! status, headers and JSON-RPC answer. Answers may come as JSON or as SSE
//! `data:` lines; both are read.

use serde_json::{Value, json};

/// Protocol version sent in `initialize` and the version header.
pub const PROTOCOL_VERSION: &str = "2025-11-25";

/// What the server answered to one POST.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: reqwest::header::HeaderMap,
    /// The JSON-RPC message answering the request id, if any.
    pub json: Option<Value>,
    /// The raw body (or the SSE stream read up to the answer).
    pub text: String,
}

impl Reply {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    /// `result` of a successful JSON-RPC answer; panics otherwise.
    pub fn result(&self) -> &Value {
        assert_eq!(self.status, 200, "{}", self.text);
        let json = self
            .json
            .as_ref()
            .unwrap_or_else(|| panic!("no answer: {}", self.text));
        json.get("result")
            .unwrap_or_else(|| panic!("not a result: {json}"))
    }
}

/// One POST to `url` with the headers MCP clients send.
pub async fn post(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    session: Option<&str>,
    extra_headers: &[(&str, &str)],
    body: Vec<u8>,
    id: Option<&Value>,
) -> Reply {
    let mut req = http
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("user-agent", "tokentally-security-test/1.0")
        .header("mcp-protocol-version", PROTOCOL_VERSION)
        .body(body);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    if let Some(s) = session {
        req = req.header("mcp-session-id", s);
    }
    for (k, v) in extra_headers {
        req = req.header(*k, *v);
    }
    let mut resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let is_sse = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("text/event-stream"));
    let mut text = String::new();
    if !is_sse {
        text = resp.text().await.unwrap_or_default();
        let json = serde_json::from_str(&text).ok();
        return Reply {
            status,
            headers,
            json,
            text,
        };
    }
    let mut json = None;
    'read: while let Some(chunk) = resp.chunk().await.unwrap_or(None) {
        text.push_str(&String::from_utf8_lossy(&chunk));
        for line in text.lines() {
            if let Some(data) = line.strip_prefix("data:")
                && let Ok(v) = serde_json::from_str::<Value>(data.trim())
                && (id.is_none() || v.get("id") == id)
            {
                json = Some(v);
                break 'read;
            }
        }
    }
    Reply {
        status,
        headers,
        json,
        text,
    }
}

/// An initialized MCP session for one token.
pub struct Session {
    /// The HTTP client (keeps its connections).
    pub http: reqwest::Client,
    /// `http://host:port/mcp`.
    pub url: String,
    /// The bearer token.
    pub token: String,
    /// `mcp-session-id` given at `initialize` (none when stateless).
    pub id: Option<String>,
    next_id: i64,
}

impl Session {
    /// Runs `initialize` and `notifications/initialized`; panics if refused.
    pub async fn open(url: &str, token: &str) -> Session {
        Self::try_open(url, token)
            .await
            .unwrap_or_else(|r| panic!("initialize refused: {} {}", r.status, r.text))
    }

    /// Like [`Session::open`], returning the refusal instead of panicking.
    pub async fn try_open(url: &str, token: &str) -> Result<Session, Reply> {
        let http = reqwest::Client::new();
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "security-test", "version": "1.0"}
        }});
        let r = post(
            &http,
            url,
            Some(token),
            None,
            &[],
            init.to_string().into_bytes(),
            Some(&json!(0)),
        )
        .await;
        if r.status != 200 || r.json.as_ref().and_then(|j| j.get("result")).is_none() {
            return Err(r);
        }
        let id = r.header("mcp-session-id");
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let n = post(
            &http,
            url,
            Some(token),
            id.as_deref(),
            &[],
            note.to_string().into_bytes(),
            None,
        )
        .await;
        if n.status >= 300 {
            return Err(n);
        }
        Ok(Session {
            http,
            url: url.to_string(),
            token: token.to_string(),
            id,
            next_id: 1,
        })
    }

    /// Sends one JSON-RPC request with `method` and `params`.
    pub async fn request(&mut self, method: &str, params: Value) -> Reply {
        self.next_id += 1;
        let id = json!(self.next_id);
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send_raw(body.to_string().into_bytes(), Some(&id))
            .await
    }

    /// Sends raw bytes as the body, with this session's headers.
    pub async fn send_raw(&self, body: Vec<u8>, id: Option<&Value>) -> Reply {
        post(
            &self.http,
            &self.url,
            Some(&self.token),
            self.id.as_deref(),
            &[],
            body,
            id,
        )
        .await
    }

    /// `tools/call`, returning the whole reply (status, headers, JSON-RPC).
    pub async fn call_raw(&mut self, tool: &str, args: Value) -> Reply {
        self.request("tools/call", json!({"name": tool, "arguments": args}))
            .await
    }

    /// `tools/call` that must be answered with a result (which may have
    /// `isError`); returns the result object.
    pub async fn call(&mut self, tool: &str, args: Value) -> Value {
        self.call_raw(tool, args).await.result().clone()
    }

    /// `tools/call` that must succeed; returns `structuredContent`.
    pub async fn call_ok(&mut self, tool: &str, args: Value) -> Value {
        let r = self.call(tool, args).await;
        assert_ne!(r["isError"], true, "{tool}: {r}");
        r["structuredContent"].clone()
    }

    /// Names from `tools/list`.
    pub async fn tool_names(&mut self) -> Vec<String> {
        let r = self.request("tools/list", json!({})).await;
        r.result()["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    }
}

/// The text of a tool result's first content block.
pub fn text_of(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

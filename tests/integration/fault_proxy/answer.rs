//! How the proxy answers one request: the counting and the armed kill, the planned and targeted faults,
//! the emulated registry quirks, and the forwarding to the registry behind.

use super::*;

/// Page `page` of a referrers index with `per_page` entries, and the `Link` to the next page if any. An
/// answer that is not an index is passed on whole.
fn referrers_page(
    answer: &Bytes,
    page: usize,
    per_page: usize,
    path: &str,
    query: &[(String, String)],
) -> (Bytes, Option<String>) {
    let Ok(mut index) = serde_json::from_slice::<serde_json::Value>(answer) else {
        return (answer.clone(), None);
    };
    let Some(all) = index["manifests"].as_array().cloned() else {
        return (answer.clone(), None);
    };
    let start = (page * per_page).min(all.len());
    let end = (start + per_page).min(all.len());
    index["manifests"] = serde_json::Value::Array(all[start..end].to_vec());
    let next = (end < all.len()).then(|| {
        let mut pairs: Vec<(String, String)> = query.iter().filter(|(k, _)| k != "page").cloned().collect();
        pairs.push(("page".into(), (page + 1).to_string()));
        let q = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
        format!("<{path}?{q}>; rel=\"next\"")
    });
    (Bytes::from(serde_json::to_vec(&index).unwrap()), next)
}

impl State {
    /// Whether the repository of a `/v2/<repo>/referrers/<digest>` path holds that digest's manifest.
    async fn holds_subject(&self, path: &str) -> bool {
        let Some((repo, digest)) = path.split_once("/referrers/") else { return true };
        let url = format!("http://{}{repo}/manifests/{digest}", self.upstream);
        let accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";
        let head = self.client.head(url).header("accept", accept).send().await;
        head.map_or(true, |r| r.status() != StatusCode::NOT_FOUND)
    }

    /// Whether `DELETE /v2/<name>/manifests/<digest>` names a manifest that a referrers tag-schema index
    /// of the repository lists (read from the registry behind, as the registry itself would know).
    async fn listed_by_an_index(&self, path: &str) -> bool {
        let Some((repo, digest)) = path.split_once("/manifests/") else { return false };
        let base = format!("http://{}{repo}", self.upstream);
        let Ok(tags) = self.client.get(format!("{base}/tags/list")).send().await else { return false };
        let tags: serde_json::Value =
            serde_json::from_slice(&tags.bytes().await.unwrap_or_default()).unwrap_or_default();
        for tag in tags["tags"].as_array().into_iter().flatten().filter_map(|t| t.as_str()) {
            let Some(hex) = tag.strip_prefix("sha256-") else { continue };
            if hex.len() != 64 {
                continue;
            }
            let index = self
                .client
                .get(format!("{base}/manifests/{tag}"))
                .header("accept", "application/vnd.oci.image.index.v1+json")
                .send()
                .await;
            let Ok(index) = index else { continue };
            let index: serde_json::Value =
                serde_json::from_slice(&index.bytes().await.unwrap_or_default()).unwrap_or_default();
            let entries = index["manifests"].as_array().into_iter().flatten();
            if entries.filter_map(|m| m["digest"].as_str()).any(|d| d == digest) {
                return true;
            }
        }
        false
    }
}

fn full(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response =
        Response::new(Full::new(Bytes::from_static(body.as_bytes())).map_err(|e| match e {}).boxed_unsync());
    *response.status_mut() = status;
    response
}

pub(super) async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Response<Body>, Dropped> {
    let n = state.requests.fetch_add(1, Ordering::SeqCst) + 1;
    let (parts, body) = req.into_parts();
    let (path, query) = match parts.uri.path().strip_prefix(MOVED_UPLOADS) {
        // An upload session moved off `/v2/`: the token is the session's own path and query.
        Some(moved) => session_of(moved, parts.uri.query()).ok_or(Dropped)?,
        None => (parts.uri.path().to_owned(), parts.uri.query().map(str::to_owned)),
    };
    let method = parts.method.as_str().to_owned();
    let key = normalise(&method, &path, query.as_deref());
    // As asked for: a moved upload session shows its own path here.
    state.arrivals.lock().unwrap().push((state.started.elapsed(), format!("{method} {}", parts.uri.path())));
    let _in_flight = InFlight::enter(&state);
    let note = |what: &str| state.log.lock().unwrap().push(format!("#{n} {key} → {what}"));
    if state.killed.load(Ordering::SeqCst) {
        note("dropped: the client was killed");
        return Err(Dropped);
    }
    let kill = state.kill.lock().unwrap().as_mut().and_then(|k| k.hit(n, &key).then_some(k.when));
    if kill == Some(KillWhen::BeforeForwarding) {
        note("client killed before forwarding");
        state.kill_child();
        return Err(Dropped);
    }
    let body = body.collect().await.map_err(|_| Dropped)?.to_bytes();
    // A refusal naming a query (`PATH?k=`) applies to requests whose query starts so.
    let with_query = format!("{path}?{}", query.as_deref().unwrap_or(""));
    let refusal = state
        .refused
        .lock()
        .unwrap()
        .iter()
        .find(|(p, _)| *p == path || (p.contains('?') && with_query.starts_with(p.as_str())))
        .map(|(_, s)| *s);
    if let Some(status) = refusal {
        note(&format!("refused with {status}"));
        return Ok(full(
            StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN),
            "{\"errors\":[{\"code\":\"DENIED\",\"message\":\"requested access to the resource is denied\"}]}",
        ));
    }
    if method == "DELETE" && state.refuse_deletes.load(Ordering::SeqCst) {
        note("refused with 405 UNSUPPORTED");
        return Ok(full(
            StatusCode::METHOD_NOT_ALLOWED,
            "{\"errors\":[{\"code\":\"UNSUPPORTED\",\"message\":\"The operation is unsupported.\"}]}",
        ));
    }
    if method == "PUT" && path.contains("/manifests/") && state.refuse_index_subjects.load(Ordering::SeqCst) {
        let subject_type = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|m| m["subject"]["mediaType"].as_str().map(str::to_owned));
        if subject_type.is_some_and(|t| t.contains("index") || t.contains("manifest.list")) {
            note("refused with 405: the subject is an index");
            return Ok(full(
                StatusCode::METHOD_NOT_ALLOWED,
                "{\"errors\":[{\"code\":\"UNSUPPORTED\",\"message\":\"subject of type image index is not supported\"}]}",
            ));
        }
    }
    if method == "DELETE" && state.refuse_listed_deletes.load(Ordering::SeqCst) && state.listed_by_an_index(&path).await
    {
        note("refused with 400: a referrers index lists it");
        return Ok(full(
            StatusCode::BAD_REQUEST,
            "{\"errors\":[{\"code\":\"GOOGLE_MANIFEST_DANGLING_PARENT_IMAGE\",\"message\":\"manifest is referenced by a parent image index\"}]}",
        ));
    }
    let is_listing = method == "GET" && path.contains("/referrers/");
    if is_listing && state.empty_object_for_unknown.load(Ordering::SeqCst) && !state.holds_subject(&path).await {
        note("200 {} for a subject the repository does not hold");
        let mut response = full(StatusCode::OK, "{}");
        response.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static("application/json"));
        return Ok(response);
    }
    let ttl = *state.referrers_ttl.lock().unwrap();
    if is_listing && !ttl.is_zero() {
        let cached = state.referrers_cache.lock().unwrap().get(&path).cloned();
        if let Some((at, status, headers, answer)) = cached.filter(|(at, ..)| at.elapsed() < ttl) {
            note(&format!("{} from the cache ({} ms old)", status.as_u16(), at.elapsed().as_millis()));
            let mut response = Response::new(Full::new(answer).map_err(|e: Infallible| match e {}).boxed_unsync());
            *response.status_mut() = status;
            *response.headers_mut() = headers;
            return Ok(response);
        }
    }
    let fault = if kill.is_some() { None } else { state.take_targeted(&method, &path).or_else(|| state.decide(&key)) };
    if let Some(f) = fault {
        note(&f.name());
        state.count(f);
    }
    match fault {
        Some(Fault::ServerError(code)) => {
            return Ok(full(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), "injected"));
        }
        Some(Fault::TooManyRequests(after)) => {
            let mut r = full(StatusCode::TOO_MANY_REQUESTS, "{\"errors\":[{\"code\":\"TOOMANYREQUESTS\"}]}");
            r.headers_mut().insert("retry-after", u32::from(after).into());
            return Ok(r);
        }
        Some(Fault::Reset) => return Err(Dropped),
        _ => {}
    }
    let delayed = state.delayed.lock().unwrap().clone();
    let slowed = delayed.iter().filter(|(m, p, _)| *m == method && *p == path).map(|d| d.2).max();
    let delay = (*state.delay.lock().unwrap()).max(slowed.unwrap_or_default());
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut forwarded_path = path.clone();
    if state.digest_tags.load(Ordering::SeqCst)
        && matches!(method.as_str(), "GET" | "HEAD")
        && let Some((repo, tag)) = path.split_once("/manifests/")
        && let Some(hex) = tag.strip_prefix("sha256-")
        && hex.len() == 64
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
    {
        forwarded_path = format!("{repo}/manifests/sha256:{hex}");
    }
    let is_referrers = method == "GET" && path.contains("/referrers/");
    let per_page = if is_referrers { state.referrers_page.load(Ordering::SeqCst) } else { 0 };
    let drop_filter = is_referrers && state.drop_filter.load(Ordering::SeqCst);
    // The page asked for is the proxy's own; the filter may be dropped.
    let pairs: Vec<(String, String)> =
        query.as_deref().map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
    let page: usize = pairs.iter().find(|(k, _)| k == "page").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let forwarded: Vec<&(String, String)> =
        pairs.iter().filter(|(k, _)| !(per_page > 0 && k == "page" || drop_filter && k == "artifactType")).collect();
    let mut url = format!("http://{}{forwarded_path}", state.upstream);
    if is_referrers && (per_page > 0 || drop_filter) {
        if !forwarded.is_empty() {
            url.push('?');
            url.push_str(&url::form_urlencoded::Serializer::new(String::new()).extend_pairs(forwarded).finish());
        }
    } else if let Some(q) = &query {
        url.push('?');
        url.push_str(q);
    }
    let mut forward = state.client.request(parts.method.clone(), &url);
    for (name, value) in &parts.headers {
        let stripped = name.as_str() == "range" && state.strip_range.load(Ordering::SeqCst);
        if !stripped && !matches!(name.as_str(), "host" | "content-length" | "connection" | "transfer-encoding") {
            forward = forward.header(name, value);
        }
    }
    if !body.is_empty() || matches!(method.as_str(), "POST" | "PUT" | "PATCH") {
        forward = forward.body(body.clone());
    }
    let upstream = forward.send().await.map_err(|_| Dropped)?;
    let status = upstream.status();
    let mut headers = upstream.headers().clone();
    let mut answer = upstream.bytes().await.map_err(|_| Dropped)?;
    if drop_filter {
        headers.remove("oci-filters-applied");
    }
    if is_referrers && status == StatusCode::OK && state.config_type_listed.load(Ordering::SeqCst) {
        let mut index: serde_json::Value = serde_json::from_slice(&answer).map_err(|_| Dropped)?;
        for entry in index["manifests"].as_array_mut().into_iter().flatten() {
            entry["artifactType"] = "application/vnd.oci.empty.v1+json".into();
        }
        answer = Bytes::from(serde_json::to_vec(&index).map_err(|_| Dropped)?);
        headers.remove("content-length");
    }
    if per_page > 0 && status == StatusCode::OK {
        let (body, next) = referrers_page(&answer, page, per_page as usize, &path, &pairs);
        answer = body;
        headers.remove("content-length");
        if let Some(link) = next.and_then(|l| l.parse().ok()) {
            headers.insert("link", link);
        }
    }
    if kill == Some(KillWhen::AfterForwarding) {
        note("client killed after forwarding");
        state.kill_child();
        return Err(Dropped);
    }
    if fault.is_none() {
        note(&status.as_u16().to_string());
    }
    match fault {
        Some(Fault::LostResponse) => return Err(Dropped),
        Some(Fault::Truncated) if answer.is_empty() || method == "HEAD" => return Err(Dropped),
        Some(Fault::LostBehind502) => return Ok(full(StatusCode::BAD_GATEWAY, "injected after forwarding")),
        Some(Fault::LostBehind(code)) => {
            let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return Ok(full(code, "injected after forwarding"));
        }
        _ => {}
    }
    // Upload sessions and pages must come back through the proxy.
    for name in ["location", "link"] {
        if let Some(v) = headers.get(name).and_then(|v| v.to_str().ok()) {
            let mut rewritten = v.replace(&state.upstream, &state.host);
            if name == "location" && state.move_uploads.load(Ordering::SeqCst) {
                rewritten = moved_session(&rewritten);
            }
            if let Ok(v) = rewritten.parse() {
                headers.insert(name, v);
            }
        }
    }
    headers.remove("transfer-encoding");
    headers.remove("connection");
    if state.claim_subject.load(Ordering::SeqCst)
        && method == "PUT"
        && path.contains("/manifests/")
        && status.is_success()
    {
        let subject = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|m| m["subject"]["digest"].as_str().map(str::to_owned));
        if let Some(value) = subject.and_then(|d| d.parse().ok()) {
            headers.insert("oci-subject", value);
        }
    }
    if is_listing && !ttl.is_zero() && fault.is_none() {
        let mut cache = state.referrers_cache.lock().unwrap();
        let fresh = cache.get(&path).is_some_and(|(at, ..)| at.elapsed() < ttl);
        if !fresh {
            cache.insert(path.clone(), (Instant::now(), status, headers.clone(), answer.clone()));
        }
    }
    let half = answer.len() / 2;
    let body: Body = match fault {
        Some(Fault::Truncated) => {
            let first = answer.slice(..half);
            let chunks: Vec<Result<Frame<Bytes>, std::io::Error>> =
                vec![Ok(Frame::data(first)), Err(std::io::Error::other("injected truncation"))];
            BodyExt::boxed_unsync(StreamBody::new(futures_util::stream::iter(chunks)))
        }
        Some(Fault::Slow) => {
            let delay = state.plan.map_or(Duration::ZERO, |p| p.slow);
            let (first, second) = (answer.slice(..half), answer.slice(half..));
            let stream = futures_util::stream::unfold(0u8, move |step| {
                let (first, second) = (first.clone(), second.clone());
                async move {
                    match step {
                        0 => Some((Ok::<_, std::io::Error>(Frame::data(first)), 1)),
                        1 => {
                            tokio::time::sleep(delay).await;
                            Some((Ok(Frame::data(second)), 2))
                        }
                        _ => None,
                    }
                }
            });
            if answer.is_empty() {
                tokio::time::sleep(delay).await;
            }
            BodyExt::boxed_unsync(StreamBody::new(stream))
        }
        _ => {
            state.bytes_answered.fetch_add(answer.len() as u64, Ordering::SeqCst);
            let request = match &query {
                Some(q) => format!("{method} {path}?{q}"),
                None => format!("{method} {path}"),
            };
            state.answered.lock().unwrap().push((request, answer.len() as u64));
            Full::new(answer).map_err(|e: Infallible| match e {}).boxed_unsync()
        }
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Ok(response)
}

/// Where [`FaultProxy::move_upload_sessions`] puts upload sessions, as Google Artifact Registry does
/// (`/artifacts-uploads/namespaces/<project>/repositories/<repository>/uploads/<id>`).
const MOVED_UPLOADS: &str = "/artifacts-uploads/namespaces/lab/repositories/quirks/uploads/";

/// The session `location` (absolute or not) moved under [`MOVED_UPLOADS`], its path and query kept in
/// the id (hex), so that the proxy can send the next request of the session where the registry expects it.
fn moved_session(location: &str) -> String {
    let at = location.find("/v2/").unwrap_or(0);
    format!("{MOVED_UPLOADS}{}", hex::encode(&location[at..]))
}

/// The registry's own path and query of a moved session, the client's query (`digest=…`) added.
fn session_of(id: &str, query: Option<&str>) -> Option<(String, Option<String>)> {
    let original = String::from_utf8(hex::decode(id).ok()?).ok()?;
    let (path, own) = match original.split_once('?') {
        Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
        None => (original, None),
    };
    let query = match (own, query) {
        (Some(a), Some(b)) => Some(format!("{a}&{b}")),
        (a, b) => a.or(b.map(str::to_owned)),
    };
    Some((path, query))
}

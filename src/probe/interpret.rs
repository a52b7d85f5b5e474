//! Answers into facts: pure, so every reading of a status, header or error code is unit-tested here,
//! away from the requests that produce them.

use super::report::{
    Access, AuthScheme, DeleteOrder, Fact, FilterSupport, IfMatch, Paging, RangeSupport, ReferrersSupport, TagReading,
};

/// What of a registry answer the facts depend on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Answer {
    pub status: u16,
    /// Distribution error codes of the body.
    pub codes: Vec<String>,
    /// `Content-Type` without parameters.
    pub content_type: Option<String>,
    /// Schemes of the `WWW-Authenticate` challenges, lowercase.
    pub challenges: Vec<String>,
    /// A `rel="next"` link was sent.
    pub link: bool,
}

impl Answer {
    pub(crate) fn code(&self) -> Option<String> {
        self.codes.first().cloned()
    }

    fn fact<V>(&self, value: V, detail: impl Into<String>) -> Fact<V> {
        Fact::new(value, detail).status(self.status).code(self.code())
    }

    fn is_denial(&self) -> bool {
        matches!(self.status, 401 | 403) || self.codes.iter().any(|c| c == "DENIED" || c == "UNAUTHORIZED")
    }

    /// A definite "no such object": an `*_UNKNOWN` code, or a 404 with no error body.
    pub(crate) fn is_not_found(&self) -> bool {
        let unknown =
            self.codes.iter().any(|c| matches!(c.as_str(), "MANIFEST_UNKNOWN" | "NAME_UNKNOWN" | "BLOB_UNKNOWN"));
        !self.is_denial() && (unknown || (self.status == 404 && self.codes.is_empty()))
    }

    /// 405 or `UNSUPPORTED`: the operation is refused for every object.
    pub(crate) fn is_unsupported(&self) -> bool {
        self.status == 405 || self.codes.iter().any(|c| c == "UNSUPPORTED")
    }

    /// How the answer is quoted in a fact's detail: `405 UNSUPPORTED`.
    pub(crate) fn describe(&self) -> String {
        match self.code() {
            Some(code) => format!("{} {code}", self.status),
            None => self.status.to_string(),
        }
    }
}

/// The scheme a 401 asked for (bearer first, as the client answers it).
pub(crate) fn auth_scheme(anonymous: &Answer) -> AuthScheme {
    if anonymous.status != 401 {
        return AuthScheme::None;
    }
    let has = |s: &str| anonymous.challenges.iter().any(|c| c == s);
    if has("bearer") {
        AuthScheme::Bearer
    } else if has("basic") {
        AuthScheme::Basic
    } else {
        AuthScheme::Other
    }
}

/// `GET /v2/_catalog?n=1`.
pub(crate) fn catalog(answer: &Answer, entries: usize) -> (Fact<Access>, Fact<Paging>) {
    let access = match answer.status {
        200 => answer.fact(Access::Allowed, format!("{} for n=1", count(entries))),
        401 | 403 => answer.fact(Access::Denied, "the catalog is refused to the credentials in use"),
        404 => answer.fact(Access::NotFound, "no catalog endpoint"),
        _ => answer.fact(Access::Other, format!("answered {}", answer.describe())),
    };
    let paging = if answer.status == 200 {
        paging(answer, entries, 1, None)
    } else {
        answer.fact(Paging::NotApplicable, "the catalog could not be listed")
    };
    (access, paging)
}

/// A listing asked for with `n`: its first page had `entries` entries; `total` is the length of the
/// whole listing asked for without `n`, when it was.
pub(crate) fn paging(first_page: &Answer, entries: usize, n: usize, total: Option<usize>) -> Fact<Paging> {
    if first_page.status != 200 {
        return first_page.fact(Paging::Unknown, format!("the listing answered {}", first_page.describe()));
    }
    if first_page.link {
        return first_page.fact(Paging::Link, format!("n={n} gave {} and a Link to the next page", count(entries)));
    }
    if entries > n {
        return first_page.fact(Paging::NIgnored, format!("n={n} gave {} and no Link: n is ignored", count(entries)));
    }
    match total {
        Some(total) if total > entries => first_page.fact(
            Paging::CutWithoutLink,
            format!("n={n} gave {entries} of {total} entries and no Link: the rest cannot be reached by paging"),
        ),
        Some(total) => {
            first_page.fact(Paging::NotEnoughEntries, format!("{} in all: at least 2 are needed to tell", count(total)))
        }
        None => first_page
            .fact(Paging::NotEnoughEntries, format!("{} for n={n}: at least 2 are needed to tell", count(entries))),
    }
}

fn count(n: usize) -> String {
    if n == 1 { "1 entry".to_owned() } else { format!("{n} entries") }
}

/// `GET /v2/<name>/referrers/<digest>`. `index` is whether a 200 body parsed as an image index.
pub(crate) fn referrers(answer: &Answer, index: bool) -> Fact<ReferrersSupport> {
    use ReferrersSupport::{Supported, Unknown, Unsupported};
    let json = answer.content_type.as_deref().is_some_and(|t| t.contains("json"));
    match answer.status {
        200 if index => answer.fact(Supported, "200 with an image index"),
        200 if !json => answer.fact(Unsupported, "200 with something that is not JSON (a web page): no referrers API"),
        200 => answer.fact(Unknown, "200 with JSON that is not an image index"),
        // A distribution error (NAME_UNKNOWN, MANIFEST_UNKNOWN) comes from the API code, not the router.
        404 if !answer.codes.is_empty() && !answer.is_denial() => answer.fact(
            Unknown,
            format!(
                "404 {}: an error of the registry's API, not its router; probe an existing repository",
                answer.describe()
            ),
        ),
        404 if answer.is_denial() => {
            answer.fact(Unknown, "404 with a denial: the repository is hidden from these credentials")
        }
        404 => answer.fact(Unsupported, "the router's 404: no referrers API (the tag schema is used)"),
        405 | 406 => answer.fact(Unsupported, format!("{}: no referrers API (the tag schema is used)", answer.status)),
        401 if answer.challenges.is_empty() => {
            answer.fact(Unsupported, "401 without a challenge: no referrers route (Harbor 2.7)")
        }
        300..=399 => answer.fact(Unsupported, "a redirect away from the API: no referrers API"),
        401 | 403 => answer.fact(Unknown, "denied to the credentials in use"),
        400 => answer.fact(
            Unknown,
            format!("{}: a bad request for this digest (Quay answers so for an unknown subject)", answer.describe()),
        ),
        _ => answer.fact(Unknown, format!("answered {}", answer.describe())),
    }
}

/// The `artifactType` filter. `listing` is, when the filtered listing held known referrers: whether it
/// held the one of the type asked for, and whether it held one of another type.
pub(crate) fn filter(answer: &Answer, applied: bool, listing: Option<(bool, bool)>) -> Fact<FilterSupport> {
    use FilterSupport::*;
    match (applied, listing) {
        (true, None) => answer.fact(Honoured, "OCI-Filters-Applied: artifactType"),
        (false, None) => answer.fact(NotSignalled, "no OCI-Filters-Applied header: att2ref filters listings itself"),
        (true, Some((true, false))) => {
            answer.fact(Honoured, "OCI-Filters-Applied: artifactType, and only the type asked for is listed")
        }
        (true, Some((_, true))) => {
            answer.fact(Misreported, "OCI-Filters-Applied: artifactType, yet a referrer of another type is listed")
        }
        (false, Some((_, true))) => {
            answer.fact(Ignored, "no OCI-Filters-Applied header, and a referrer of another type is listed")
        }
        (false, Some((_, false))) => {
            answer.fact(FilteredUnsignalled, "filtered, but no OCI-Filters-Applied header says so")
        }
        (true, Some((false, false))) => {
            answer.fact(Misreported, "OCI-Filters-Applied: artifactType, yet the referrer of that type is missing")
        }
    }
}

/// A GET of `sha256-<hex>`: `served` is the digest of the bytes served when 200, compared with the
/// subject's; `index` whether they parse as an image index.
pub(crate) fn tag_reading(answer: &Answer, resolves_to_subject: bool, index: bool) -> Fact<TagReading> {
    match answer.status {
        200 if resolves_to_subject => answer.fact(
            TagReading::ResolvesToSubject,
            "the tag answers with the image itself: the registry reads it as a digest (GitLab); the tag schema cannot be used",
        ),
        200 if index => answer.fact(TagReading::Index, "an image index (the tag-schema referrers index)"),
        200 => answer.fact(TagReading::Other, "a manifest that is neither the image nor an index"),
        _ if answer.is_not_found() => answer.fact(TagReading::Absent, "no such tag"),
        _ => answer.fact(TagReading::Other, format!("answered {}", answer.describe())),
    }
}

/// A blob GET with `Range: bytes=0-0`.
pub(crate) fn range(answer: &Answer) -> Fact<RangeSupport> {
    match answer.status {
        206 => answer.fact(RangeSupport::Honoured, "206 with the byte asked for"),
        200 => answer.fact(RangeSupport::Ignored, "200 with the whole blob: Range is ignored"),
        _ => answer.fact(RangeSupport::Unknown, format!("answered {}", answer.describe())),
    }
}

/// A manifest PUT with `If-Match` naming an entity tag the manifest does not have.
pub(crate) fn if_match(answer: &Answer) -> Fact<IfMatch> {
    match answer.status {
        412 => answer.fact(IfMatch::Enforced, "412 for a stale entity tag"),
        200..=299 => answer.fact(IfMatch::Ignored, "a PUT with a stale If-Match was accepted"),
        _ => answer.fact(IfMatch::Unknown, format!("answered {}", answer.describe())),
    }
}

/// A referrer DELETE while it is listed (`first`), and, when that was refused and an index entry could
/// be removed, the DELETE after removing it (`after`).
pub(crate) fn delete_order(first: &Answer, after: Option<&Answer>) -> Fact<DeleteOrder> {
    let ok = |a: &Answer| (200..=299).contains(&a.status);
    if ok(first) {
        return first.fact(DeleteOrder::WhileListed, "a referrer still listed was deleted");
    }
    if first.is_unsupported() {
        return first.fact(DeleteOrder::Unsupported, format!("manifest DELETE answered {}", first.describe()));
    }
    match after {
        Some(a) if ok(a) => first.fact(
            DeleteOrder::IndexEntryFirst,
            format!("refused while listed ({}); accepted once its index entry was removed", first.describe()),
        ),
        Some(a) => a.fact(
            DeleteOrder::Refused,
            format!(
                "refused while listed ({}) and again after its index entry was removed ({})",
                first.describe(),
                a.describe()
            ),
        ),
        None => first
            .fact(DeleteOrder::Refused, format!("refused ({}), with no index entry to remove first", first.describe())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16) -> Answer {
        Answer { status, ..Answer::default() }
    }

    fn with_code(status: u16, code: &str) -> Answer {
        Answer { status, codes: vec![code.into()], ..Answer::default() }
    }

    #[test]
    fn auth_schemes_come_from_the_challenge_of_a_401() {
        assert_eq!(auth_scheme(&answer(200)), AuthScheme::None);
        let a = Answer { status: 401, challenges: vec!["basic".into(), "bearer".into()], ..Answer::default() };
        assert_eq!(auth_scheme(&a), AuthScheme::Bearer);
        let a = Answer { status: 401, challenges: vec!["basic".into()], ..Answer::default() };
        assert_eq!(auth_scheme(&a), AuthScheme::Basic);
        assert_eq!(auth_scheme(&answer(401)), AuthScheme::Other);
    }

    #[test]
    fn referrers_answers_are_read_as_the_spec_and_known_registries_mean_them() {
        let plain_404 = Answer { status: 404, content_type: Some("text/plain".into()), ..Answer::default() };
        assert_eq!(referrers(&plain_404, false).value, ReferrersSupport::Unsupported);
        assert_eq!(referrers(&with_code(404, "NAME_UNKNOWN"), false).value, ReferrersSupport::Unknown);
        assert_eq!(referrers(&with_code(404, "DENIED"), false).value, ReferrersSupport::Unknown);
        let index = Answer {
            status: 200,
            content_type: Some("application/vnd.oci.image.index.v1+json".into()),
            ..Answer::default()
        };
        let fact = referrers(&index, true);
        assert_eq!((fact.value, fact.status), (ReferrersSupport::Supported, Some(200)));
        let html = Answer { status: 200, content_type: Some("text/html".into()), ..Answer::default() };
        assert_eq!(referrers(&html, false).value, ReferrersSupport::Unsupported);
        assert_eq!(referrers(&answer(405), false).value, ReferrersSupport::Unsupported);
        assert_eq!(referrers(&answer(406), false).value, ReferrersSupport::Unsupported);
        assert_eq!(referrers(&answer(303), false).value, ReferrersSupport::Unsupported);
        assert_eq!(referrers(&answer(401), false).value, ReferrersSupport::Unsupported);
        let challenged = Answer { status: 401, challenges: vec!["bearer".into()], ..Answer::default() };
        assert_eq!(referrers(&challenged, false).value, ReferrersSupport::Unknown);
        let quay = with_code(400, "MANIFEST_INVALID");
        let fact = referrers(&quay, false);
        assert_eq!((fact.value, fact.code.as_deref()), (ReferrersSupport::Unknown, Some("MANIFEST_INVALID")));
        assert_eq!(referrers(&answer(502), false).value, ReferrersSupport::Unknown);
    }

    #[test]
    fn paging_needs_two_entries_to_tell() {
        let linked = Answer { status: 200, link: true, ..Answer::default() };
        assert_eq!(paging(&linked, 1, 1, None).value, Paging::Link);
        assert_eq!(paging(&answer(200), 3, 1, None).value, Paging::NIgnored);
        assert_eq!(paging(&answer(200), 1, 1, Some(2)).value, Paging::CutWithoutLink);
        assert_eq!(paging(&answer(200), 1, 1, Some(1)).value, Paging::NotEnoughEntries);
        assert_eq!(paging(&answer(200), 0, 1, None).value, Paging::NotEnoughEntries);
        let fact = paging(&with_code(404, "NAME_UNKNOWN"), 0, 1, None);
        assert_eq!((fact.value, fact.status, fact.code.as_deref()), (Paging::Unknown, Some(404), Some("NAME_UNKNOWN")));
    }

    #[test]
    fn catalog_access_and_paging() {
        let (access, paging) = catalog(&answer(200), 2);
        assert_eq!((access.value, paging.value), (Access::Allowed, Paging::NIgnored));
        let (access, paging) = catalog(&with_code(401, "UNAUTHORIZED"), 0);
        assert_eq!((access.value, paging.value), (Access::Denied, Paging::NotApplicable));
        assert_eq!(catalog(&answer(404), 0).0.value, Access::NotFound);
        assert_eq!(catalog(&answer(500), 0).0.value, Access::Other);
    }

    #[test]
    fn the_filter_is_judged_by_header_and_listing() {
        let a = answer(200);
        assert_eq!(filter(&a, true, None).value, FilterSupport::Honoured);
        assert_eq!(filter(&a, false, None).value, FilterSupport::NotSignalled);
        assert_eq!(filter(&a, true, Some((true, false))).value, FilterSupport::Honoured);
        assert_eq!(filter(&a, false, Some((true, true))).value, FilterSupport::Ignored);
        assert_eq!(filter(&a, false, Some((true, false))).value, FilterSupport::FilteredUnsignalled);
        assert_eq!(filter(&a, true, Some((true, true))).value, FilterSupport::Misreported);
        assert_eq!(filter(&a, true, Some((false, false))).value, FilterSupport::Misreported);
    }

    #[test]
    fn the_referrers_tag_reads_as_the_image_on_gitlab() {
        assert_eq!(tag_reading(&answer(200), true, false).value, TagReading::ResolvesToSubject);
        assert_eq!(tag_reading(&answer(200), false, true).value, TagReading::Index);
        assert_eq!(tag_reading(&with_code(404, "MANIFEST_UNKNOWN"), false, false).value, TagReading::Absent);
        assert_eq!(tag_reading(&answer(404), false, false).value, TagReading::Absent);
        assert_eq!(tag_reading(&with_code(403, "DENIED"), false, false).value, TagReading::Other);
    }

    #[test]
    fn range_and_if_match() {
        assert_eq!(range(&answer(206)).value, RangeSupport::Honoured);
        assert_eq!(range(&answer(200)).value, RangeSupport::Ignored);
        assert_eq!(range(&answer(416)).value, RangeSupport::Unknown);
        assert_eq!(if_match(&answer(412)).value, IfMatch::Enforced);
        assert_eq!(if_match(&answer(201)).value, IfMatch::Ignored);
        assert_eq!(if_match(&answer(400)).value, IfMatch::Unknown);
    }

    #[test]
    fn delete_order_tells_refusals_apart() {
        assert_eq!(delete_order(&answer(202), None).value, DeleteOrder::WhileListed);
        let ghcr = with_code(405, "UNSUPPORTED");
        let fact = delete_order(&ghcr, None);
        assert_eq!(
            (fact.value, fact.status, fact.code.as_deref()),
            (DeleteOrder::Unsupported, Some(405), Some("UNSUPPORTED"))
        );
        let gar = with_code(400, "GOOGLE_MANIFEST_DANGLING_PARENT_IMAGE");
        assert_eq!(delete_order(&gar, Some(&answer(202))).value, DeleteOrder::IndexEntryFirst);
        assert_eq!(delete_order(&gar, Some(&gar)).value, DeleteOrder::Refused);
        assert_eq!(delete_order(&gar, None).value, DeleteOrder::Refused);
    }

    #[test]
    fn not_found_is_definite_only() {
        assert!(answer(404).is_not_found());
        assert!(with_code(404, "MANIFEST_UNKNOWN").is_not_found());
        assert!(!with_code(404, "DENIED").is_not_found());
        assert!(!Answer { status: 404, codes: vec!["X".into()], ..Answer::default() }.is_not_found());
        assert!(with_code(400, "UNSUPPORTED").is_unsupported());
    }
}

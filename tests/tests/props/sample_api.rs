//! The generated Demand API's free-form answer with secrets in it: the
//! survey end links, whose `Debug` must not show a field named like a
//! secret, at any depth, whatever else the object holds.

use dynata_sample_api::types::SurveyEndLinksResponse;

use super::*;

/// Field names that say they hold a secret, in any case.
fn secret_name() -> impl Strategy<Value = String> {
    (
        ".{0,6}",
        proptest::sample::select(vec!["key", "Key", "SECRET", "secret", "Token", "password"]),
        ".{0,6}",
    )
        .prop_map(|(before, word, after)| format!("{before}{word}{after}"))
}

/// An end-links answer: any JSON object, with secrets under secret-named
/// fields at the top, inside an object and inside an array.
fn end_links() -> impl Strategy<Value = (Vec<u8>, Vec<String>)> {
    (
        secret(),
        secret(),
        secret(),
        secret_name(),
        secret_name(),
        secret_name(),
    )
        .prop_flat_map(|(a, b, c, top, nested, listed)| {
            let secrets = vec![a.clone(), b.clone(), c.clone()];
            json_value(vec!["plain".into()]).prop_map(move |other| {
                let body = serde_json::json!({
                    "data": {
                        "other": other,
                        top.clone(): a,
                        "endLinks": {nested.clone(): b},
                        "tests": [{listed.clone(): c}],
                    },
                    "status": {"message": "success"},
                });
                (body.to_string().into_bytes(), secrets.clone())
            })
        })
}

#[test]
fn survey_end_links_never_show_a_secret_in_debug() {
    check(
        "sample_api::survey_end_links",
        256,
        200_000,
        end_links(),
        |(body, secrets)| {
            let answer: SurveyEndLinksResponse =
                serde_json::from_slice(&body).expect("a JSON object decodes");
            assert_no_secret("the end links' Debug", &format!("{answer:?}"), &secrets)?;
            Ok(())
        },
    );
}

#[test]
fn any_bytes_decode_as_end_links_or_fail_without_a_panic() {
    check(
        "sample_api::survey_end_links_bytes",
        256,
        200_000,
        proptest::collection::vec(any::<u8>(), 0..200),
        |bytes| {
            let _ = serde_json::from_slice::<SurveyEndLinksResponse>(&bytes);
            Ok(())
        },
    );
}

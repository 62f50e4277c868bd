//! Property tests of the codec: round trips, truncation, random and mutated byte streams.
//! Bounded case counts so that they run in every `cargo test`.

use isp_routeros::proto::{
    decode_length, encode_length, encode_sentence, Decoder, ProtoError, Reply, ReplyKind, Request,
    DEFAULT_MAX_WORD_LEN,
};
use proptest::prelude::*;

fn cfg() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    }
}

/// Feeds `bytes` in chunks of the given sizes, collecting sentences until an error.
fn decode_all(bytes: &[u8], chunks: &[usize], max_word: usize) -> (Vec<Vec<Vec<u8>>>, Option<ProtoError>) {
    let mut d = Decoder::with_limits(max_word, 64);
    let mut out = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    while pos < bytes.len() {
        let step = chunks.get(i % chunks.len().max(1)).copied().unwrap_or(1).max(1);
        let end = (pos + step).min(bytes.len());
        d.push(&bytes[pos..end]);
        pos = end;
        i += 1;
        loop {
            match d.next_sentence() {
                Ok(Some(s)) => out.push(s),
                Ok(None) => break,
                Err(e) => return (out, Some(e)),
            }
        }
    }
    (out, None)
}

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,15}"
}

fn value() -> impl Strategy<Value = String> {
    // any unicode, including '=' and empty
    any::<String>().prop_map(|s| s.chars().take(40).collect())
}

fn reply_strategy() -> impl Strategy<Value = Reply> {
    let kind = prop_oneof![
        Just(ReplyKind::Re),
        Just(ReplyKind::Done),
        Just(ReplyKind::Trap),
        Just(ReplyKind::Empty),
        Just(ReplyKind::Fatal),
    ];
    (
        kind,
        proptest::option::of("[A-Za-z0-9_-]{0,8}"),
        proptest::collection::vec((prop_oneof![name(), Just(".id".to_owned())], value()), 0..8),
        "[a-z ]{0,30}",
    )
        .prop_map(|(kind, tag, attributes, msg)| {
            if kind == ReplyKind::Fatal {
                Reply {
                    kind,
                    tag: None,
                    attributes: Vec::new(),
                    message: Some(msg),
                }
            } else {
                Reply {
                    kind,
                    tag,
                    attributes,
                    message: None,
                }
            }
        })
}

fn request_strategy() -> impl Strategy<Value = Request> {
    (
        "(/[a-z-]{1,10}){1,4}",
        proptest::collection::vec((name(), value()), 0..8),
        proptest::collection::vec("[a-z#!&|.<>=0-9-]{0,12}", 0..5),
        proptest::option::of("[0-9a-z]{1,6}"),
    )
        .prop_map(|(command, attributes, queries, tag)| Request {
            command,
            attributes,
            queries,
            tag,
        })
}

proptest! {
    #![proptest_config(cfg())]

    #[test]
    fn length_round_trip(len in prop_oneof![0usize..0x200, 0usize..0x5000, 0usize..0x30_0000, 0usize..=0xFFFF_FFFF]) {
        let mut out = Vec::new();
        encode_length(len, &mut out);
        prop_assert_eq!(decode_length(&out), Ok(Some((len as u64, out.len()))));
    }

    #[test]
    fn reply_round_trip(reply in reply_strategy(), tag_first in any::<bool>(), chunks in proptest::collection::vec(1usize..20, 1..5)) {
        let mut bytes = Vec::new();
        reply.encode(tag_first, &mut bytes);
        let (sentences, err) = decode_all(&bytes, &chunks, DEFAULT_MAX_WORD_LEN);
        prop_assert_eq!(err, None);
        prop_assert_eq!(sentences.len(), 1);
        prop_assert_eq!(Reply::parse(&sentences[0]).unwrap(), reply);
    }

    #[test]
    fn request_round_trip(req in request_strategy(), chunks in proptest::collection::vec(1usize..20, 1..5)) {
        let mut bytes = Vec::new();
        req.encode(&mut bytes);
        let (sentences, err) = decode_all(&bytes, &chunks, DEFAULT_MAX_WORD_LEN);
        prop_assert_eq!(err, None);
        prop_assert_eq!(sentences.len(), 1);
        prop_assert_eq!(Request::parse(&sentences[0]).unwrap(), req);
    }

    #[test]
    fn raw_words_round_trip(sentences in proptest::collection::vec(
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..300), 1..6), 0..5)) {
        let mut bytes = Vec::new();
        for s in &sentences {
            encode_sentence(s, &mut bytes);
        }
        let (got, err) = decode_all(&bytes, &[7, 1, 300], DEFAULT_MAX_WORD_LEN);
        prop_assert_eq!(err, None);
        prop_assert_eq!(got, sentences);
    }

    #[test]
    fn truncation_never_yields_a_partial_sentence(reply in reply_strategy(), cut_frac in 0.0f64..1.0) {
        let mut bytes = Vec::new();
        reply.encode(false, &mut bytes);
        let cut = ((bytes.len() as f64) * cut_frac) as usize;
        let cut = cut.min(bytes.len() - 1); // strictly shorter
        let (got, err) = decode_all(&bytes[..cut], &[3], DEFAULT_MAX_WORD_LEN);
        prop_assert_eq!(err, None);
        prop_assert!(got.is_empty());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048), chunks in proptest::collection::vec(1usize..64, 1..4)) {
        let (sentences, err) = decode_all(&bytes, &chunks, 4096);
        for s in &sentences {
            let _ = Reply::parse(s);
            let _ = Request::parse(s);
            prop_assert!(!s.is_empty());
            prop_assert!(s.len() <= 64);
            prop_assert!(s.iter().all(|w| !w.is_empty() && w.len() <= 4096));
        }
        if let Some(ProtoError::WordTooLong { len, max }) = err {
            prop_assert!(len > max as u64);
        }
    }

    #[test]
    fn mutated_streams_never_panic(
        replies in proptest::collection::vec(reply_strategy(), 1..4),
        mutations in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let mut bytes = Vec::new();
        for r in &replies {
            r.encode(true, &mut bytes);
        }
        for (idx, byte, op) in mutations {
            if bytes.is_empty() {
                break;
            }
            let i = idx.index(bytes.len());
            match op {
                0 => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                _ => { bytes.remove(i); }
            }
        }
        let (sentences, _err) = decode_all(&bytes, &[5, 11], 1 << 20);
        for s in &sentences {
            let _ = Reply::parse(s);
            let _ = Request::parse(s);
        }
    }
}

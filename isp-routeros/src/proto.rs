//! The RouterOS API wire format: words, sentences, replies and requests.
//!
//! Shared by the client and the simulator. See `isp-routeros/PROTOCOL.md`, section 1.
//!
//! (Over 800 lines with its tests: the encoder, the incremental decoder with its
//! byte budgets and the reply parser share the length-prefix rules, and the
//! proptests below exercise them together.)
//!
//! * A **word** is a length prefix (1 to 5 bytes, [`encode_length`]) followed by that many bytes.
//! * A **sentence** is a list of words ended by the empty word; empty sentences are ignored.
//! * A [`Reply`] is a sentence sent by the router (`!re`, `!done`, `!trap`, `!empty`, `!fatal`);
//!   a [`Request`] is a sentence sent by a client (a `/command` and its words).
//!
//! The [`Decoder`] is incremental and bounded: a length prefix above its maximum word length,
//! a sentence with more words than its maximum, or (with
//! [`Decoder::with_max_sentence_bytes`]) a word that would take a sentence past its byte budget,
//! is an error ([`ProtoError`]) before anything is allocated for it. No input makes it panic (proptests in `tests/proto_props.rs`).
//!
//! Text: reply words, attribute names, commands and queries must be UTF-8
//! ([`ProtoError::InvalidUtf8`] otherwise). Attribute *values* are decoded leniently
//! (invalid sequences become U+FFFD), because routers store whatever bytes an operator typed in a
//! comment, and one odd comment must not make a whole `print` unreadable.
//!
//! ```
//! use isp_routeros::proto::{encode_sentence, Decoder, Reply, ReplyKind, DEFAULT_MAX_WORD_LEN};
//!
//! let mut bytes = Vec::new();
//! encode_sentence(&["!done", ".tag=7", "=ret=*1A"], &mut bytes);
//! assert_eq!(bytes[..7], [0x05, b'!', b'd', b'o', b'n', b'e', 0x06]);
//!
//! let mut decoder = Decoder::new(DEFAULT_MAX_WORD_LEN);
//! decoder.push(&bytes);
//! let words = decoder.next_sentence().unwrap().unwrap();
//! let reply = Reply::parse(&words).unwrap();
//! assert_eq!(reply.kind, ReplyKind::Done);
//! assert_eq!(reply.tag.as_deref(), Some("7"));
//! assert_eq!(reply.get("ret"), Some("*1A"));
//! ```

use bytes::{Buf, BytesMut};

/// Default bound on one word's length (larger prefixes are an error, not an allocation).
pub const DEFAULT_MAX_WORD_LEN: usize = 16 * 1024 * 1024;

/// Default bound on the number of words in one sentence.
pub const DEFAULT_MAX_WORDS: usize = 65_536;

/// Default byte budget of one sentence a client accepts from a router (the sum
/// of its words' lengths). A `!re` row is a few hundred bytes; a megabyte is
/// generous. [`Decoder::new`] itself sets no budget beyond its word bounds.
pub const DEFAULT_MAX_SENTENCE_BYTES: usize = 1024 * 1024;

/// Largest length the five-byte form can carry.
pub const MAX_ENCODABLE_LEN: u64 = u32::MAX as u64;

/// What was wrong with bytes or words received. Never produced by a panic.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ProtoError {
    /// A length prefix starting with a byte >= 0xF8: a control byte, the stream cannot continue.
    #[error("reserved control byte 0x{0:02X} where a word length was expected")]
    ReservedControlByte(u8),
    /// A word longer than the decoder's bound.
    #[error("word of {len} bytes exceeds the maximum of {max} bytes")]
    WordTooLong {
        /// Length announced by the prefix.
        len: u64,
        /// The decoder's bound.
        max: usize,
    },
    /// A sentence whose words add up to more bytes than the decoder's budget.
    /// Detected from the length prefix of the word that would exceed it, before
    /// that word is buffered.
    #[error("sentence of more than {max} bytes (at least {len} bytes announced)")]
    SentenceTooLong {
        /// Bytes of the sentence so far, the announced word included.
        len: u64,
        /// The decoder's budget.
        max: usize,
    },
    /// A sentence with more words than the decoder's bound.
    #[error("sentence has more than {max} words")]
    TooManyWords {
        /// The decoder's bound.
        max: usize,
    },
    /// Text that must be UTF-8 (reply word, command, attribute name, query) was not.
    #[error("word is not valid UTF-8")]
    InvalidUtf8,
    /// A sentence without a first word (cannot come out of the decoder, which skips them).
    #[error("empty sentence")]
    EmptyReply,
    /// The first word of a reply is not `!re`, `!done`, `!trap`, `!empty` or `!fatal`.
    #[error("unknown reply word {0:?}")]
    UnknownReply(String),
    /// Anything else that does not follow the protocol; the text says what.
    #[error("malformed sentence: {0}")]
    Malformed(String),
}

/// Appends the length prefix of a word of `len` bytes (all five forms).
///
/// Lengths above [`MAX_ENCODABLE_LEN`] cannot be represented; they are written as the
/// five-byte form of `len & 0xFFFF_FFFF`, so callers must not produce such words
/// ([`encode_word`] is only ever called with in-memory words, far below 4 GiB in practice).
pub fn encode_length(len: usize, out: &mut Vec<u8>) {
    let len = len as u64;
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x4000 {
        let v = (len as u16) | 0x8000;
        out.extend_from_slice(&v.to_be_bytes());
    } else if len < 0x20_0000 {
        let v = (len as u32) | 0x00C0_0000;
        out.extend_from_slice(&v.to_be_bytes()[1..]);
    } else if len < 0x1000_0000 {
        let v = (len as u32) | 0xE000_0000;
        out.extend_from_slice(&v.to_be_bytes());
    } else {
        out.push(0xF0);
        out.extend_from_slice(&((len & 0xFFFF_FFFF) as u32).to_be_bytes());
    }
}

/// Decodes a length prefix at the start of `buf`.
///
/// Returns `Ok(None)` when `buf` is too short to hold the whole prefix, otherwise the length and
/// the number of prefix bytes.
pub fn decode_length(buf: &[u8]) -> Result<Option<(u64, usize)>, ProtoError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let size = match first {
        0x00..=0x7F => 1,
        0x80..=0xBF => 2,
        0xC0..=0xDF => 3,
        0xE0..=0xEF => 4,
        0xF0 => 5,
        other => return Err(ProtoError::ReservedControlByte(other)),
    };
    let Some(prefix) = buf.get(..size) else {
        return Ok(None);
    };
    let len = match size {
        1 => u64::from(first),
        2 => u64::from(u16::from_be_bytes([prefix[0] & 0x3F, prefix[1]])),
        3 => u64::from(u32::from_be_bytes([0, prefix[0] & 0x1F, prefix[1], prefix[2]])),
        4 => u64::from(u32::from_be_bytes([
            prefix[0] & 0x0F,
            prefix[1],
            prefix[2],
            prefix[3],
        ])),
        _ => u64::from(u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]])),
    };
    Ok(Some((len, size)))
}

/// Appends one word (prefix + bytes).
pub fn encode_word(word: &[u8], out: &mut Vec<u8>) {
    encode_length(word.len(), out);
    out.extend_from_slice(word);
}

/// Appends a sentence: each word, then the empty word.
pub fn encode_sentence<W: AsRef<[u8]>>(words: &[W], out: &mut Vec<u8>) {
    for word in words {
        encode_word(word.as_ref(), out);
    }
    out.push(0);
}

/// Incremental decoder: feed bytes with [`push`](Decoder::push), take whole sentences with
/// [`next_sentence`](Decoder::next_sentence).
///
/// After an error the stream cannot be resynchronised: the same error is returned again on
/// every call, and the connection should be closed.
#[derive(Debug)]
pub struct Decoder {
    max_word_len: usize,
    max_words: usize,
    max_sentence_bytes: usize,
    /// Word bytes of the sentence being read.
    sentence_bytes: usize,
    buffer: BytesMut,
    /// Words of the sentence being read.
    words: Vec<Vec<u8>>,
    failed: Option<ProtoError>,
}

impl Decoder {
    /// A decoder refusing words longer than `max_word_len` bytes and sentences longer than
    /// [`DEFAULT_MAX_WORDS`] words.
    pub fn new(max_word_len: usize) -> Self {
        Self::with_limits(max_word_len, DEFAULT_MAX_WORDS)
    }

    /// A decoder with both bounds chosen.
    pub fn with_limits(max_word_len: usize, max_words: usize) -> Self {
        Self {
            max_word_len,
            max_words,
            max_sentence_bytes: usize::MAX,
            sentence_bytes: 0,
            buffer: BytesMut::new(),
            words: Vec::new(),
            failed: None,
        }
    }

    /// The same decoder, refusing sentences whose words add up to more than
    /// `max` bytes ([`ProtoError::SentenceTooLong`]), checked from each
    /// word's length prefix so that an oversized word is never buffered whole.
    pub fn with_max_sentence_bytes(mut self, max: usize) -> Self {
        self.max_sentence_bytes = max;
        self
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// Bytes received but not yet part of a returned sentence (including words of a sentence
    /// not yet complete).
    pub fn buffered(&self) -> usize {
        self.buffer.len() + self.words.iter().map(Vec::len).sum::<usize>()
    }

    /// True when no partial sentence is pending.
    pub fn is_idle(&self) -> bool {
        self.buffer.is_empty() && self.words.is_empty()
    }

    /// Next complete non-empty sentence (raw words), `Ok(None)` when more bytes are needed.
    pub fn next_sentence(&mut self) -> Result<Option<Vec<Vec<u8>>>, ProtoError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        match self.next_inner() {
            Ok(v) => Ok(v),
            Err(err) => {
                self.failed = Some(err.clone());
                Err(err)
            }
        }
    }

    fn next_inner(&mut self) -> Result<Option<Vec<Vec<u8>>>, ProtoError> {
        loop {
            let Some((len, prefix)) = decode_length(&self.buffer)? else {
                return Ok(None);
            };
            if len > self.max_word_len as u64 {
                return Err(ProtoError::WordTooLong {
                    len,
                    max: self.max_word_len,
                });
            }
            // `len <= max_word_len`, a usize, so the cast is lossless.
            let len = len as usize;
            let sentence = self.sentence_bytes.saturating_add(len);
            if sentence > self.max_sentence_bytes {
                return Err(ProtoError::SentenceTooLong {
                    len: sentence as u64,
                    max: self.max_sentence_bytes,
                });
            }
            if self.buffer.len() - prefix < len {
                return Ok(None);
            }
            self.buffer.advance(prefix);
            if len == 0 {
                if self.words.is_empty() {
                    continue; // empty sentence: ignored
                }
                self.sentence_bytes = 0;
                return Ok(Some(std::mem::take(&mut self.words)));
            }
            if self.words.len() >= self.max_words {
                return Err(ProtoError::TooManyWords { max: self.max_words });
            }
            let word = self.buffer.split_to(len).to_vec();
            self.sentence_bytes = sentence;
            self.words.push(word);
        }
    }
}

/// The kind of a reply sentence (its first word).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplyKind {
    /// `!re`: one row of data.
    Re,
    /// `!done`: the last sentence of a command.
    Done,
    /// `!trap`: an error; a `!done` follows.
    Trap,
    /// `!empty`: a `print` that found nothing (RouterOS >= 7.18); a `!done` follows.
    Empty,
    /// `!fatal`: the router closes the connection.
    Fatal,
}

impl ReplyKind {
    /// The reply word (`"!re"`, ...).
    pub fn word(self) -> &'static str {
        match self {
            Self::Re => "!re",
            Self::Done => "!done",
            Self::Trap => "!trap",
            Self::Empty => "!empty",
            Self::Fatal => "!fatal",
        }
    }

    /// The kind named by a reply word, if any.
    pub fn from_word(word: &str) -> Option<Self> {
        Some(match word {
            "!re" => Self::Re,
            "!done" => Self::Done,
            "!trap" => Self::Trap,
            "!empty" => Self::Empty,
            "!fatal" => Self::Fatal,
            _ => return None,
        })
    }
}

fn utf8(word: &[u8]) -> Result<&str, ProtoError> {
    std::str::from_utf8(word).map_err(|_| ProtoError::InvalidUtf8)
}

/// Splits `=name=value` (without the leading `=`): name must be UTF-8 and non-empty, the value
/// is decoded leniently. A word without a second `=` is a name with an empty value.
fn split_attribute(rest: &[u8]) -> Result<(String, String), ProtoError> {
    let (name, value) = match rest.iter().position(|&b| b == b'=') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    if name.is_empty() {
        return Err(ProtoError::Malformed("attribute word with an empty name".into()));
    }
    Ok((
        utf8(name)?.to_owned(),
        String::from_utf8_lossy(value).into_owned(),
    ))
}

/// Parses an API attribute word `.name=value` (without the leading `.`).
fn split_api_attribute(rest: &[u8]) -> Result<(String, String), ProtoError> {
    let (name, value) = split_attribute(rest)?;
    Ok((format!(".{name}"), value))
}

/// A parsed reply sentence. `.tag` may appear at any position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Which reply.
    pub kind: ReplyKind,
    /// The `.tag` of the request this answers.
    pub tag: Option<String>,
    /// `=name=value` attributes in order (`.id` appears as name ".id"). API attribute words
    /// other than `.tag` (`.section=1`) appear with their dot (".section").
    pub attributes: Vec<(String, String)>,
    /// For `!fatal`: the reason word(s), joined by a newline.
    pub message: Option<String>,
}

impl Reply {
    /// A reply of `kind` without tag or attributes.
    pub fn new(kind: ReplyKind) -> Self {
        Self {
            kind,
            tag: None,
            attributes: Vec::new(),
            message: None,
        }
    }

    /// `!done`.
    pub fn done() -> Self {
        Self::new(ReplyKind::Done)
    }

    /// `!re` with these attributes.
    pub fn re<K: Into<String>, V: Into<String>>(attributes: impl IntoIterator<Item = (K, V)>) -> Self {
        let mut reply = Self::new(ReplyKind::Re);
        reply.attributes = attributes
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        reply
    }

    /// `!trap =message=...` with an optional `=category=`.
    pub fn trap(message: impl Into<String>, category: Option<u8>) -> Self {
        let mut reply = Self::new(ReplyKind::Trap);
        if let Some(c) = category {
            reply.attributes.push(("category".into(), c.to_string()));
        }
        reply.attributes.push(("message".into(), message.into()));
        reply
    }

    /// `!fatal` with a reason.
    pub fn fatal(message: impl Into<String>) -> Self {
        let mut reply = Self::new(ReplyKind::Fatal);
        reply.message = Some(message.into());
        reply
    }

    /// Sets the tag.
    pub fn with_tag(mut self, tag: Option<String>) -> Self {
        self.tag = tag;
        self
    }

    /// Appends an attribute.
    pub fn attr(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.push((name.into(), value.into()));
        self
    }

    /// Parses a reply sentence (as returned by [`Decoder::next_sentence`]).
    pub fn parse(words: &[Vec<u8>]) -> Result<Reply, ProtoError> {
        let (first, rest) = words.split_first().ok_or(ProtoError::EmptyReply)?;
        let first = utf8(first)?;
        let kind = ReplyKind::from_word(first).ok_or_else(|| ProtoError::UnknownReply(first.to_owned()))?;
        let mut reply = Reply::new(kind);
        let mut message_words: Vec<String> = Vec::new();
        for word in rest {
            if let Some(attr) = word.strip_prefix(b"=") {
                reply.attributes.push(split_attribute(attr)?);
            } else if let Some(tag) = word.strip_prefix(b".tag=") {
                if reply.tag.is_some() {
                    return Err(ProtoError::Malformed("more than one .tag word".into()));
                }
                reply.tag = Some(utf8(tag)?.to_owned());
            } else if let Some(api) = word.strip_prefix(b".") {
                reply.attributes.push(split_api_attribute(api)?);
            } else if kind == ReplyKind::Fatal {
                message_words.push(String::from_utf8_lossy(word).into_owned());
            } else {
                return Err(ProtoError::Malformed(format!(
                    "unexpected word {:?} in a {} reply",
                    String::from_utf8_lossy(word),
                    kind.word()
                )));
            }
        }
        if kind == ReplyKind::Fatal {
            reply.message = Some(message_words.join("\n"));
        }
        Ok(reply)
    }

    /// The value of attribute `name` (first occurrence).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Words to send (server side). `tag_first` puts `.tag` right after the reply word,
    /// otherwise last.
    pub fn to_words(&self, tag_first: bool) -> Vec<String> {
        let mut words = Vec::with_capacity(self.attributes.len() + 3);
        words.push(self.kind.word().to_owned());
        let tag = self.tag.as_ref().map(|t| format!(".tag={t}"));
        if tag_first {
            words.extend(tag.clone());
        }
        if let Some(message) = &self.message {
            if !message.is_empty() {
                words.push(message.clone());
            }
        }
        for (k, v) in &self.attributes {
            words.push(format!("={k}={v}"));
        }
        if !tag_first {
            words.extend(tag);
        }
        words
    }

    /// Appends the encoded sentence.
    pub fn encode(&self, tag_first: bool, out: &mut Vec<u8>) {
        encode_sentence(&self.to_words(tag_first), out);
    }
}

/// A parsed request sentence (server side), built by the client.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    /// The command path, `"/ip/hotspot/active/print"`.
    pub command: String,
    /// `=name=value` attributes in order (including `.id`, `.proplist`, `count-only`).
    /// API attribute words other than `.tag` (`.proplist=x`) appear with their dot.
    pub attributes: Vec<(String, String)>,
    /// Queries in order: the text after `?` (`"user=alice"`, `"#|"`).
    pub queries: Vec<String>,
    /// The `.tag`, if any.
    pub tag: Option<String>,
}

impl Request {
    /// A request for `command` without words.
    pub fn new(command: impl Into<String>) -> Self {
        Self {
            command: command.into(),
            ..Self::default()
        }
    }

    /// Appends an attribute `=name=value`.
    pub fn attr(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.push((name.into(), value.into()));
        self
    }

    /// Appends a query (the text after `?`).
    pub fn query(mut self, q: impl Into<String>) -> Self {
        self.queries.push(q.into());
        self
    }

    /// Sets the tag.
    pub fn tag(mut self, t: impl Into<String>) -> Self {
        self.tag = Some(t.into());
        self
    }

    /// Parses a request sentence: a command starting with `/`, then attribute, API attribute
    /// and query words in any order.
    pub fn parse(words: &[Vec<u8>]) -> Result<Request, ProtoError> {
        let (first, rest) = words
            .split_first()
            .ok_or_else(|| ProtoError::Malformed("empty request".into()))?;
        let command = utf8(first)?;
        if !command.starts_with('/') {
            return Err(ProtoError::Malformed(format!(
                "request does not start with a command: {command:?}"
            )));
        }
        let mut request = Request::new(command);
        for word in rest {
            if let Some(attr) = word.strip_prefix(b"=") {
                request.attributes.push(split_attribute(attr)?);
            } else if let Some(q) = word.strip_prefix(b"?") {
                request.queries.push(utf8(q)?.to_owned());
            } else if let Some(tag) = word.strip_prefix(b".tag=") {
                if request.tag.is_some() {
                    return Err(ProtoError::Malformed("more than one .tag word".into()));
                }
                request.tag = Some(utf8(tag)?.to_owned());
            } else if let Some(api) = word.strip_prefix(b".") {
                request.attributes.push(split_api_attribute(api)?);
            } else {
                return Err(ProtoError::Malformed(format!(
                    "unexpected word {:?} in a request",
                    String::from_utf8_lossy(word)
                )));
            }
        }
        Ok(request)
    }

    /// Words to send: command, attributes, queries, then `.tag`.
    pub fn to_words(&self) -> Vec<String> {
        let mut words = Vec::with_capacity(self.attributes.len() + self.queries.len() + 2);
        words.push(self.command.clone());
        for (k, v) in &self.attributes {
            words.push(format!("={k}={v}"));
        }
        for q in &self.queries {
            words.push(format!("?{q}"));
        }
        if let Some(t) = &self.tag {
            words.push(format!(".tag={t}"));
        }
        words
    }

    /// Appends the encoded sentence.
    pub fn encode(&self, out: &mut Vec<u8>) {
        encode_sentence(&self.to_words(), out);
    }

    /// The value of attribute `name` (first occurrence).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn len_bytes(len: usize) -> Vec<u8> {
        let mut out = Vec::new();
        encode_length(len, &mut out);
        out
    }

    #[test]
    fn length_forms_match_protocol_table() {
        assert_eq!(len_bytes(5), [0x05]);
        assert_eq!(len_bytes(0x7F), [0x7F]);
        assert_eq!(len_bytes(0x80), [0x80, 0x80]);
        assert_eq!(len_bytes(200), [0x80, 0xC8]);
        assert_eq!(len_bytes(0x3FFF), [0xBF, 0xFF]);
        assert_eq!(len_bytes(0x4000), [0xC0, 0x40, 0x00]);
        assert_eq!(len_bytes(0x1F_FFFF), [0xDF, 0xFF, 0xFF]);
        assert_eq!(len_bytes(0x20_0000), [0xE0, 0x20, 0x00, 0x00]);
        assert_eq!(len_bytes(0xFFF_FFFF), [0xEF, 0xFF, 0xFF, 0xFF]);
        assert_eq!(len_bytes(0x1000_0000), [0xF0, 0x10, 0x00, 0x00, 0x00]);
    }

    #[test]
    fn lengths_decode_back_at_every_boundary() {
        for len in [
            0usize,
            1,
            0x7F,
            0x80,
            0x3FFF,
            0x4000,
            0x1F_FFFF,
            0x20_0000,
            0xFFF_FFFF,
            0x1000_0000,
            0xFFFF_FFFF,
        ] {
            let bytes = len_bytes(len);
            assert_eq!(
                decode_length(&bytes),
                Ok(Some((len as u64, bytes.len()))),
                "len {len:#x}"
            );
            // every strict prefix asks for more bytes
            for cut in 0..bytes.len() {
                assert_eq!(decode_length(&bytes[..cut]), Ok(None));
            }
        }
    }

    #[test]
    fn control_bytes_are_errors() {
        for b in 0xF8..=0xFF {
            assert_eq!(decode_length(&[b]), Err(ProtoError::ReservedControlByte(b)));
            let mut d = Decoder::new(DEFAULT_MAX_WORD_LEN);
            d.push(&[b, 0, 0, 0, 0]);
            assert_eq!(d.next_sentence(), Err(ProtoError::ReservedControlByte(b)));
            // sticky
            assert_eq!(d.next_sentence(), Err(ProtoError::ReservedControlByte(b)));
        }
    }

    #[test]
    fn login_bytes_from_protocol_md() {
        let mut out = Vec::new();
        encode_sentence(&["/login", "=name=admin", "=password=secret"], &mut out);
        let mut expected = vec![0x06];
        expected.extend_from_slice(b"/login");
        expected.push(0x0b);
        expected.extend_from_slice(b"=name=admin");
        expected.push(0x10);
        expected.extend_from_slice(b"=password=secret");
        expected.push(0);
        assert_eq!(out, expected);
        let mut d = Decoder::new(DEFAULT_MAX_WORD_LEN);
        d.push(&out);
        let req = Request::parse(&d.next_sentence().unwrap().unwrap()).unwrap();
        assert_eq!(req.command, "/login");
        assert_eq!(req.get("name"), Some("admin"));
        assert_eq!(req.get("password"), Some("secret"));
        assert_eq!(req.tag, None);
    }

    #[test]
    fn print_request_bytes_from_protocol_md() {
        let req = Request::new("/ip/hotspot/active/print")
            .attr(".proplist", ".id,user,address")
            .query("user=alice")
            .tag("8");
        let mut out = Vec::new();
        req.encode(&mut out);
        let mut expected = vec![0x18];
        expected.extend_from_slice(b"/ip/hotspot/active/print");
        expected.push(0x1b);
        expected.extend_from_slice(b"=.proplist=.id,user,address");
        expected.push(0x0b);
        expected.extend_from_slice(b"?user=alice");
        expected.push(0x06);
        expected.extend_from_slice(b".tag=8");
        expected.push(0);
        assert_eq!(out, expected);
        let mut d = Decoder::new(DEFAULT_MAX_WORD_LEN);
        d.push(&out);
        let parsed = Request::parse(&d.next_sentence().unwrap().unwrap()).unwrap();
        assert_eq!(parsed, req);
    }

    #[test]
    fn done_with_ret_bytes_from_protocol_md() {
        let bytes: Vec<u8> = [
            &[0x05][..],
            &[0x21, 0x64, 0x6f, 0x6e, 0x65],
            &[0x06],
            &[0x2e, 0x74, 0x61, 0x67, 0x3d, 0x37],
            &[0x08],
            &[0x3d, 0x72, 0x65, 0x74, 0x3d, 0x2a, 0x31, 0x41],
            &[0x00],
        ]
        .concat();
        let mut d = Decoder::new(DEFAULT_MAX_WORD_LEN);
        d.push(&bytes);
        let reply = Reply::parse(&d.next_sentence().unwrap().unwrap()).unwrap();
        assert_eq!(reply.kind, ReplyKind::Done);
        assert_eq!(reply.tag.as_deref(), Some("7"));
        assert_eq!(reply.get("ret"), Some("*1A"));
        let mut out = Vec::new();
        reply.encode(true, &mut out);
        assert_eq!(out, bytes);
        // tag last
        let mut out = Vec::new();
        reply.encode(false, &mut out);
        let mut d = Decoder::new(DEFAULT_MAX_WORD_LEN);
        d.push(&out);
        let words = d.next_sentence().unwrap().unwrap();
        assert_eq!(words.last().unwrap(), b".tag=7");
        assert_eq!(Reply::parse(&words).unwrap(), reply);
    }

    #[test]
    fn tag_is_accepted_anywhere() {
        let words: Vec<Vec<u8>> = vec![
            b"!re".to_vec(),
            b"=.id=*1".to_vec(),
            b".tag=abc".to_vec(),
            b"=user=alice".to_vec(),
        ];
        let reply = Reply::parse(&words).unwrap();
        assert_eq!(reply.tag.as_deref(), Some("abc"));
        assert_eq!(
            reply.attributes,
            vec![
                (".id".to_owned(), "*1".to_owned()),
                ("user".to_owned(), "alice".to_owned())
            ]
        );
    }

    #[test]
    fn trap_empty_fatal() {
        let trap = Reply::parse(&[
            b"!trap".to_vec(),
            b"=category=1".to_vec(),
            b"=message=invalid value for argument remote-address".to_vec(),
        ])
        .unwrap();
        assert_eq!(trap.kind, ReplyKind::Trap);
        assert_eq!(trap.get("category"), Some("1"));
        assert_eq!(
            trap.get("message"),
            Some("invalid value for argument remote-address")
        );

        let empty = Reply::parse(&[b"!empty".to_vec(), b".tag=3".to_vec()]).unwrap();
        assert_eq!(empty.kind, ReplyKind::Empty);
        assert_eq!(empty.tag.as_deref(), Some("3"));

        let fatal = Reply::parse(&[b"!fatal".to_vec(), b"not logged in".to_vec()]).unwrap();
        assert_eq!(fatal.kind, ReplyKind::Fatal);
        assert_eq!(fatal.message.as_deref(), Some("not logged in"));
        assert_eq!(fatal.to_words(true), vec!["!fatal", "not logged in"]);
    }

    #[test]
    fn values_may_contain_equals_and_be_empty() {
        let reply = Reply::parse(&[b"!re".to_vec(), b"=comment=a=b=c".to_vec(), b"=x=".to_vec()]).unwrap();
        assert_eq!(reply.get("comment"), Some("a=b=c"));
        assert_eq!(reply.get("x"), Some(""));
        let req = Request::parse(&[b"/x/print".to_vec(), b"=count-only=".to_vec()]).unwrap();
        assert_eq!(req.get("count-only"), Some(""));
    }

    #[test]
    fn bad_replies_are_named_errors() {
        assert_eq!(Reply::parse(&[]), Err(ProtoError::EmptyReply));
        assert_eq!(
            Reply::parse(&[b"!nope".to_vec()]),
            Err(ProtoError::UnknownReply("!nope".into()))
        );
        assert_eq!(Reply::parse(&[vec![0xFF, 0xFE]]), Err(ProtoError::InvalidUtf8));
        assert!(matches!(
            Reply::parse(&[b"!re".to_vec(), b"junk".to_vec()]),
            Err(ProtoError::Malformed(_))
        ));
        assert!(matches!(
            Request::parse(&[b"login".to_vec()]),
            Err(ProtoError::Malformed(_))
        ));
    }

    #[test]
    fn word_too_long_is_not_allocated() {
        let mut d = Decoder::new(1024);
        d.push(&[0xF0, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert_eq!(
            d.next_sentence(),
            Err(ProtoError::WordTooLong {
                len: 0xFFFF_FFFF,
                max: 1024
            })
        );
        assert!(d.buffered() < 16);
    }

    #[test]
    fn a_sentence_over_budget_is_refused_before_its_word_is_buffered() {
        let mut d = Decoder::new(DEFAULT_MAX_WORD_LEN).with_max_sentence_bytes(100);
        let mut bytes = Vec::new();
        encode_sentence(&["!re", &format!("=a={}", "x".repeat(80))], &mut bytes);
        d.push(&bytes);
        assert!(d.next_sentence().unwrap().is_some(), "87 bytes fit in 100");
        // Two words of 60 bytes: the second's prefix alone trips the budget.
        let mut bytes = Vec::new();
        encode_word(format!("=a={}", "x".repeat(57)).as_bytes(), &mut bytes);
        encode_length(60, &mut bytes);
        d.push(&bytes);
        let err = d.next_sentence().unwrap_err();
        assert_eq!(err, ProtoError::SentenceTooLong { len: 120, max: 100 });
        assert!(err.to_string().contains("100 bytes"), "{err}");
        assert!(d.next_sentence().is_err(), "the stream cannot resynchronise");
        // Without a budget, the same bytes are fine.
        let mut d = Decoder::new(DEFAULT_MAX_WORD_LEN);
        let mut bytes = Vec::new();
        encode_sentence(&["x".repeat(60), "y".repeat(60)], &mut bytes);
        d.push(&bytes);
        assert!(d.next_sentence().unwrap().is_some());
    }

    #[test]
    fn too_many_words() {
        let mut d = Decoder::with_limits(1024, 3);
        let mut out = Vec::new();
        encode_sentence(&["!re", "=a=1", "=b=2", "=c=3"], &mut out);
        d.push(&out);
        assert_eq!(d.next_sentence(), Err(ProtoError::TooManyWords { max: 3 }));
    }

    #[test]
    fn byte_by_byte_feeding_and_empty_sentences() {
        let mut out = vec![0, 0];
        encode_sentence(&["!re", "=a=1"], &mut out);
        out.push(0);
        encode_sentence(&["!done"], &mut out);
        let mut d = Decoder::new(DEFAULT_MAX_WORD_LEN);
        let mut got = Vec::new();
        for b in out {
            d.push(&[b]);
            while let Some(s) = d.next_sentence().unwrap() {
                got.push(s);
            }
        }
        assert_eq!(
            got,
            vec![vec![b"!re".to_vec(), b"=a=1".to_vec()], vec![b"!done".to_vec()]]
        );
        assert!(d.is_idle());
    }
}

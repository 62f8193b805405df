//! Generators of malformed and hostile API requests for `it/fuzz.rs`: a small seeded PRNG,
//! valid starting bodies of every served kind, and the mutations of bodies, patches and
//! list/watch queries. Every case says whether it is certainly invalid (the server must
//! refuse it with a 4xx) or may still be valid (then it is sent as a dry run, so that no
//! case can change what is stored).

pub mod bodies;
pub mod bytes;
pub mod encode;
pub mod patches;
pub mod queries;
pub mod seeds;

/// SplitMix64: tiny, fast and fully determined by its seed, so a failing case is replayed
/// from the seed and its index alone, whatever the version of any crate.
pub struct Rng(u64);

impl Rng {
    /// The generator of case `index` of the run seeded with `seed`.
    pub fn for_case(seed: u64, index: u64) -> Rng {
        let mut rng = Rng(seed ^ index.wrapping_mul(0xA076_1D64_78BD_642F));
        rng.next();
        rng
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability 1/n.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Whether the server must refuse a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validity {
    /// kube-apiserver refuses it with a 4xx whatever else the request says.
    Invalid,
    /// It may be accepted (a mutation can land on something still valid): sent as a dry run.
    Maybe,
    /// A change that may undo what made the request invalid (flipped bytes; a subresource
    /// that keeps the stored metadata): whatever else was done, it may be accepted.
    Lost,
}

impl Validity {
    /// Invalid if either part is, unless one part may have undone the other.
    pub fn and(self, other: Validity) -> Validity {
        use Validity::{Invalid, Lost, Maybe};
        match (self, other) {
            (Lost, _) | (_, Lost) => Lost,
            (Invalid, _) | (_, Invalid) => Invalid,
            _ => Maybe,
        }
    }
}

/// One generated request.
pub struct Case {
    pub method: http::Method,
    /// Path and query, percent-encoded.
    pub uri: String,
    /// The raw `Content-Type` (may be absent, or not UTF-8).
    pub content_type: Option<Vec<u8>>,
    pub body: Vec<u8>,
    pub validity: Validity,
    /// A watch: a 200 is a stream, so only its head is read.
    pub watch: bool,
    /// What was generated, for the failure message.
    pub description: String,
}

/// Percent-encodes a query value (everything but RFC 3986's unreserved characters).
pub fn percent(value: &[u8]) -> String {
    let mut out = String::new();
    for &b in value {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Generates case `index` of the run seeded with `seed`.
pub fn case(seed: u64, index: u64) -> Case {
    let mut rng = Rng::for_case(seed, index);
    let seed = seeds::pick(&mut rng);
    match rng.below(10) {
        0..=2 => bodies::create(&mut rng, seed),
        3..=4 => bodies::update(&mut rng, seed),
        5..=7 => patches::patch(&mut rng, seed),
        _ => queries::list_or_watch(&mut rng, seed),
    }
}

//! The built-in corpus: synthetic English-like text, generated
//! deterministically, for runs with no data at all.
//!
//! It is a small world: a few hundred people, places and things (pseudo-words
//! made of syllables), each person with fixed facts (where they live, what
//! they make, whom they know), told in varied sentences with agreement
//! (`the miller walks` / `the millers walk`), numbers and punctuation. Word
//! choice is Zipfian. Documents are independent functions of (seed, index),
//! so the stream never repeats and any document can be regenerated. A model
//! can learn the grammar, the facts and the vocabulary; its loss should fall
//! well below the unigram entropy. Runs on it are labelled `synthetic`.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Name under which runs report this corpus.
pub const NAME: &str = "builtin:synthetic";

const ONSETS: &[&str] = &[
    "b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "gl", "kr",
    "pl", "st", "th", "sh", "ch", "tr",
];
const NUCLEI: &[&str] = &["a", "e", "i", "o", "u", "ai", "ou", "ee", "oa"];
const CODAS: &[&str] = &["", "", "", "n", "r", "l", "m", "s", "th", "nd", "rk"];

/// The world a seed describes.
pub struct World {
    people: Vec<Person>,
    places: Vec<String>,
    things: Vec<String>,
    adjectives: Vec<String>,
    verbs: Vec<String>,
    jobs: Vec<String>,
}

struct Person {
    name: String,
    home: usize,
    job: usize,
    makes: usize,
    friend: usize,
    age: u32,
}

fn word(rng: &mut StdRng, syllables: usize) -> String {
    let mut w = String::new();
    for _ in 0..syllables {
        w.push_str(ONSETS[rng.gen_range(0..ONSETS.len())]);
        w.push_str(NUCLEI[rng.gen_range(0..NUCLEI.len())]);
        w.push_str(CODAS[rng.gen_range(0..CODAS.len())]);
    }
    w
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

fn words(rng: &mut StdRng, n: usize, syllables: std::ops::RangeInclusive<usize>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(n);
    while out.len() < n {
        let s = rng.gen_range(syllables.clone());
        let w = word(rng, s);
        if !out.contains(&w) {
            out.push(w);
        }
    }
    out
}

/// An index in `0..n`, Zipf-distributed (rank 0 most likely).
fn zipf(rng: &mut StdRng, n: usize) -> usize {
    // inverse CDF of a continuous 1/x law on [1, n+1)
    let u: f64 = rng.gen();
    (((n as f64 + 1.0).powf(u)) as usize)
        .saturating_sub(1)
        .min(n - 1)
}

impl World {
    pub fn new(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x6d61_7263_685f_776f);
        let places: Vec<String> = words(&mut rng, 120, 2..=3)
            .iter()
            .map(|w| capitalise(w))
            .collect();
        let things = words(&mut rng, 600, 1..=3);
        let adjectives = words(&mut rng, 300, 1..=3);
        let verbs = words(&mut rng, 300, 1..=2);
        let jobs = words(&mut rng, 80, 2..=3);
        let names: Vec<String> = words(&mut rng, 400, 2..=3)
            .iter()
            .map(|w| capitalise(w))
            .collect();
        let people = names
            .into_iter()
            .enumerate()
            .map(|(i, name)| Person {
                name,
                home: zipf(&mut rng, places.len()),
                job: zipf(&mut rng, jobs.len()),
                makes: zipf(&mut rng, things.len()),
                friend: (i + 1 + rng.gen_range(0..399)) % 400,
                age: rng.gen_range(18..90),
            })
            .collect();
        World {
            people,
            places,
            things,
            adjectives,
            verbs,
            jobs,
        }
    }

    fn sentence(&self, rng: &mut StdRng, p: &Person) -> String {
        let thing = |rng: &mut StdRng| &self.things[zipf(rng, self.things.len())];
        let adj = |rng: &mut StdRng| &self.adjectives[zipf(rng, self.adjectives.len())];
        let verb = |rng: &mut StdRng| &self.verbs[zipf(rng, self.verbs.len())];
        let friend = &self.people[p.friend];
        match rng.gen_range(0..10) {
            0 => format!(
                "{} lives in {} and works as a {}.",
                p.name, self.places[p.home], self.jobs[p.job]
            ),
            1 => format!(
                "Every {} in {} knows that {} makes the best {}s.",
                self.jobs[p.job], self.places[p.home], p.name, self.things[p.makes]
            ),
            2 => format!("{} is {} years old.", p.name, p.age),
            3 => format!(
                "{} and {} are old friends; they met in {}.",
                p.name, friend.name, self.places[friend.home]
            ),
            4 => {
                let n = rng.gen_range(2..40);
                format!(
                    "On day {}, {} {}s {} {} {}s to {}.",
                    rng.gen_range(1..365),
                    p.name,
                    verb(rng),
                    n,
                    adj(rng),
                    thing(rng),
                    friend.name
                )
            }
            5 => {
                // agreement: singular / plural subject
                let (t, a, v) = (thing(rng), adj(rng), verb(rng));
                if rng.gen_bool(0.5) {
                    format!("The {a} {t} {v}s near the {}.", thing(rng))
                } else {
                    format!("The {a} {t}s {v} near the {}s.", thing(rng))
                }
            }
            6 => format!(
                "In {}, the {} {}s are {}.",
                self.places[p.home],
                adj(rng),
                self.things[p.makes],
                adj(rng)
            ),
            7 => format!(
                "\"Why do you {} the {}?\" asked {}.",
                verb(rng),
                thing(rng),
                friend.name
            ),
            8 => format!(
                "{} {}s {} {}s every morning, and {} {}s them.",
                p.name,
                verb(rng),
                rng.gen_range(2..12),
                self.things[p.makes],
                friend.name,
                verb(rng)
            ),
            _ => format!(
                "The {} of {} is a {} {}.",
                self.jobs[p.job],
                self.places[p.home],
                adj(rng),
                self.jobs[friend.job]
            ),
        }
    }

    /// Document `index` of the stream: a paragraph about one person.
    pub fn document(&self, seed: u64, index: u64) -> String {
        let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index);
        let p = &self.people[zipf(&mut rng, self.people.len())];
        let n = rng.gen_range(3..9);
        let mut doc = String::new();
        for i in 0..n {
            if i > 0 {
                doc.push(' ');
            }
            doc.push_str(&self.sentence(&mut rng, p));
        }
        doc
    }
}

/// The first `n` documents of the built-in corpus for `seed`.
pub fn documents(seed: u64, n: usize) -> Vec<String> {
    let world = World::new(seed);
    (0..n as u64).map(|i| world.document(seed, i)).collect()
}

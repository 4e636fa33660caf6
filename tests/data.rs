//! The data pipeline: span corruption on real text, the tokenizers, and every
//! corpus format with its errors.

mod common;

use std::path::PathBuf;

use common::{shared_data, temp_dir};
use march_runtime::data::corpus::{read_documents, CorpusError};
use march_runtime::data::span_corruption::reconstruct;
use march_runtime::data::{Chunks, MarchTokenizer, SpanCorruption};
use rand::rngs::StdRng;
use rand::SeedableRng;

fn original_tokenizer() -> MarchTokenizer {
    MarchTokenizer::load(&shared_data().join("march-tokenizer.json")).unwrap()
}

#[test]
fn original_tokenizer_special_ids() {
    let t = original_tokenizer();
    assert_eq!(t.vocab_size(), 30_000);
    assert_eq!(t.special.eos, 0);
    assert_eq!(t.special.sentinels.len(), 100);
    assert_eq!(t.special.sentinels[0], 100, "<extra_id_0>");
    assert_eq!(t.special.sentinels[99], 1, "<extra_id_99>");
    let ids = t
        .encode_all(&["The quick brown fox jumped over 42 lazy dogs".to_string()])
        .unwrap();
    // digits are their own tokens (ids 101-110): "4", "2"
    assert_eq!(
        ids[0],
        [5123, 7063, 9440, 17513, 21672, 5225, 105, 103, 176, 15838, 13541]
    );
}

#[test]
fn documents_are_neither_padded_nor_truncated() {
    // the original tokenizer.json pads batches to their longest member and
    // truncates at 1,024 tokens: packing must see neither
    let t = original_tokenizer();
    let long = "word ".repeat(3000);
    let docs = vec![
        "short".to_string(),
        long.clone(),
        "a bit longer than short".to_string(),
    ];
    let ids = t.encode_all(&docs).unwrap();
    assert_eq!(ids[0].len(), 1);
    assert_eq!(ids[1].len(), 3000);
    assert!(!ids[2].contains(&t.special.eos));
}

fn wikitext_chunks(len: usize) -> (MarchTokenizer, Chunks) {
    let t = original_tokenizer();
    let docs = read_documents(&[shared_data().join("wikitext-2/valid.txt")]).unwrap();
    let ids = t.encode_all(&docs).unwrap();
    let chunks = Chunks::pack(&ids, t.special.eos, len, 0);
    (t, chunks)
}

#[test]
fn span_corruption_statistics_on_real_text() {
    let (t, chunks) = wikitext_chunks(512);
    let noise = SpanCorruption::default();
    let mut rng = StdRng::seed_from_u64(1);
    let (mut noise_tokens, mut spans, mut total) = (0usize, 0usize, 0usize);
    for chunk in chunks.train.to_vecs().unwrap().iter().take(400) {
        let ex = noise.corrupt(chunk, &t.special, &mut rng);
        // reconstruction is exact
        assert_eq!(&reconstruct(&ex, &t.special), chunk);
        assert_eq!(*ex.inputs.last().unwrap(), t.special.eos);
        assert_eq!(*ex.labels.last().unwrap(), t.special.eos);
        assert_eq!(ex.decoder_inputs[0], t.special.eos);
        assert_eq!(&ex.decoder_inputs[1..], &ex.labels[..ex.labels.len() - 1]);
        // the first span is non-noise: the input starts with a real token
        assert!(!t.special.sentinels.contains(&ex.inputs[0]));
        let n_spans = ex
            .labels
            .iter()
            .filter(|x| t.special.sentinels.contains(x))
            .count();
        spans += n_spans;
        noise_tokens += ex.labels.len() - 1 - n_spans;
        total += chunk.len();
        // sentinels in order: <extra_id_0>, <extra_id_1>, ...
        let used: Vec<u32> = ex
            .inputs
            .iter()
            .copied()
            .filter(|x| t.special.sentinels.contains(x))
            .collect();
        assert_eq!(used, t.special.sentinels[..n_spans]);
    }
    let density = noise_tokens as f64 / total as f64;
    let mean_span = noise_tokens as f64 / spans as f64;
    assert!((density - 0.15).abs() <= 0.01, "noise density {density}");
    assert!((mean_span - 3.0).abs() <= 0.3, "mean span {mean_span}");
}

#[test]
fn span_corruption_lengths_match_the_collator() {
    let noise = SpanCorruption::default();
    // 1024-token chunks: 154 noise tokens in 51 spans
    assert_eq!(noise.counts(1024), (154, 51));
    assert_eq!(noise.lengths(1024), (1024 - 154 + 51 + 1, 154 + 51 + 1));
    // the throughput workload: encoder 230, decoder 52
    assert_eq!(noise.lengths(254), (230, 52));
    assert_eq!(noise.chunk_for_encoder_len(230), Some(254));
}

/// The original's own format of April 2023 (its `span_corrupt_utils.py`):
/// the same spans from the same draws, the encoder input without `</s>`
/// (ending with the last span's sentinel), the labels ending with one
/// sentinel more instead of `</s>`; its doctest's shape: 50 tokens, 8 noise
/// in 3 spans, inputs of 45 and labels of 12.
#[test]
fn span_corruption_in_the_original_april_format() {
    let t5 = SpanCorruption::default();
    let april = SpanCorruption {
        format: march_runtime::data::SpanFormat::April2023,
        ..t5
    };
    assert_eq!(april.counts(50), (8, 3));
    assert_eq!(april.lengths(50), (45, 12));
    assert_eq!(april.lengths(1024), (1024 - 154 + 51, 154 + 51 + 1));
    let special = march_runtime::data::SpecialIds {
        eos: 0,
        sentinels: (1..=100).collect(),
    };
    for len in [5usize, 16, 50, 128] {
        let chunk: Vec<u32> = (0..len as u32).map(|i| 200 + i).collect();
        let (a, b) = (
            t5.corrupt(&chunk, &special, &mut StdRng::seed_from_u64(len as u64)),
            april.corrupt(&chunk, &special, &mut StdRng::seed_from_u64(len as u64)),
        );
        let spans = t5.counts(len).1;
        assert_eq!(
            &b.inputs[..],
            &a.inputs[..a.inputs.len() - 1],
            "length {len}"
        );
        assert_eq!(*b.inputs.last().unwrap(), special.sentinels[spans - 1]);
        assert_eq!(
            &b.labels[..b.labels.len() - 1],
            &a.labels[..a.labels.len() - 1]
        );
        assert_eq!(*b.labels.last().unwrap(), special.sentinels[spans]);
        assert_eq!(b.decoder_inputs, a.decoder_inputs);
        assert_eq!(reconstruct(&b, &special), chunk, "length {len}");
        assert_eq!((b.inputs.len(), b.labels.len()), april.lengths(len));
    }
}

#[test]
fn span_corruption_edge_cases() {
    let noise = SpanCorruption::default();
    let special = march_runtime::data::SpecialIds {
        eos: 0,
        sentinels: (1..=100).rev().collect(),
    };
    let mut rng = StdRng::seed_from_u64(3);
    for len in [2usize, 3, 5, 7, 10, 16, 29, 30] {
        for _ in 0..50 {
            let chunk: Vec<u32> = (0..len as u32).map(|i| 200 + i).collect();
            let ex = noise.corrupt(&chunk, &special, &mut rng);
            assert_eq!(reconstruct(&ex, &special), chunk, "length {len}");
            let (enc, dec) = noise.lengths(len);
            assert_eq!(
                (ex.inputs.len(), ex.labels.len()),
                (enc, dec),
                "length {len}"
            );
            assert!(ex.labels.len() >= 3, "at least one noise token: {ex:?}");
        }
    }
    // a document shorter than a chunk is packed with its neighbours
    let docs = vec![vec![5, 6], vec![7], vec![8, 9, 10, 11]];
    let chunks = Chunks::pack(&docs, 0, 3, 0);
    assert_eq!(
        chunks.train.to_vecs().unwrap(),
        vec![vec![5, 6, 0], vec![7, 0, 8], vec![9, 10, 11]]
    );
}

#[test]
fn trained_tokenizer_round_trips_with_byte_fallback() {
    let text = std::fs::read_to_string(shared_data().join("tinyshakespeare/input.txt")).unwrap();
    let docs: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(String::from)
        .collect();
    let t = MarchTokenizer::train(&docs, 4096).unwrap();
    assert_eq!(t.vocab_size(), 4096);
    assert_eq!(t.special.eos, 0);
    assert_eq!(t.special.sentinels[0], 100);
    assert_eq!(t.special.sentinels[99], 1);
    assert_eq!(t.token_to_id("<0x41>"), Some(101 + 0x41));
    for s in [
        "ROMEO: wherefore art thou, Romeo?",
        "Ünïcödé ☃ and 1999 digits",
        "two  spaces,\ttab",
    ] {
        let ids = &t.encode_all(&[s.to_string()]).unwrap()[0];
        assert_eq!(t.decode(ids).unwrap(), s, "round trip of {s:?}");
    }
    // characters outside the learned vocabulary go through bytes
    let snowman = &t.encode_all(&["☃".to_string()]).unwrap()[0];
    assert!(
        snowman.iter().any(|&id| (101..357).contains(&id)),
        "{snowman:?}"
    );
    // saved and loaded, the same ids
    let dir = temp_dir("tokenizer");
    t.save(&dir.join("t.json")).unwrap();
    let u = MarchTokenizer::load(&dir.join("t.json")).unwrap();
    let s = vec!["Good morrow, cousin ☃".to_string()];
    assert_eq!(t.encode_all(&s).unwrap(), u.encode_all(&s).unwrap());
}

#[test]
fn tokenizer_without_sentinels_is_refused() {
    let dir = temp_dir("bad-tokenizer");
    let json = std::fs::read_to_string(shared_data().join("march-tokenizer.json"))
        .unwrap()
        .replace("<extra_id_0>", "<renamed_0>");
    std::fs::write(dir.join("t.json"), json).unwrap();
    let err = MarchTokenizer::load(&dir.join("t.json"))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("<extra_id_0>"), "{err}");
    let err = MarchTokenizer::load(&dir.join("missing.json"))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("missing.json"), "{err}");
}

fn write_parquet(path: &PathBuf, schema: &str, rows: &[&str]) {
    use parquet::data_type::{ByteArray, ByteArrayType};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;
    use std::sync::Arc;
    let schema = Arc::new(parse_message_type(schema).unwrap());
    let file = std::fs::File::create(path).unwrap();
    let mut w =
        SerializedFileWriter::new(file, schema, Arc::new(WriterProperties::builder().build()))
            .unwrap();
    let mut group = w.next_row_group().unwrap();
    while let Some(mut col) = group.next_column().unwrap() {
        let values: Vec<ByteArray> = rows.iter().map(|r| ByteArray::from(*r)).collect();
        col.typed::<ByteArrayType>()
            .write_batch(&values, None, None)
            .unwrap();
        col.close().unwrap();
    }
    group.close().unwrap();
    w.close().unwrap();
}

#[test]
fn every_corpus_format_reads() {
    let dir = temp_dir("formats");
    std::fs::write(dir.join("a.txt"), "first line\n\n  second line  \n").unwrap();
    std::fs::write(
        dir.join("b.jsonl"),
        "{\"text\": \"from json\", \"url\": \"x\"}\n\n{\"text\": \"again\"}\n",
    )
    .unwrap();
    write_parquet(
        &dir.join("c.parquet"),
        "message m { REQUIRED BYTE_ARRAY text (UTF8); }",
        &["from parquet", "row two"],
    );
    std::fs::write(dir.join("ignored.md"), "not a corpus").unwrap();
    let docs = read_documents(std::slice::from_ref(&dir)).unwrap();
    assert_eq!(
        docs,
        [
            "first line",
            "second line",
            "from json",
            "again",
            "from parquet",
            "row two"
        ]
    );
    let one = read_documents(&[dir.join("b.jsonl")]).unwrap();
    assert_eq!(one, ["from json", "again"]);
}

fn gzip(path: &std::path::Path, text: &str) {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(
        std::fs::File::create(path).unwrap(),
        flate2::Compression::default(),
    );
    e.write_all(text.as_bytes()).unwrap();
    e.finish().unwrap();
}

/// C4 ships as `.json.gz`: gzipped text and JSON Lines read as their
/// decompressed selves, in a directory too; a corrupt one is named.
#[test]
fn gzipped_corpora_read() {
    let dir = temp_dir("gzip");
    gzip(&dir.join("a.txt.gz"), "first line\n\nsecond line\n");
    gzip(&dir.join("b.json.gz"), "{\"text\": \"from gzip\"}\n");
    // a second member appended (`cat x.gz y.gz`): read as gzip -d reads it
    let mut two = std::fs::read(dir.join("b.json.gz")).unwrap();
    gzip(&dir.join("part.gz.tmp"), "{\"text\": \"member two\"}\n");
    two.extend(std::fs::read(dir.join("part.gz.tmp")).unwrap());
    std::fs::remove_file(dir.join("part.gz.tmp")).unwrap();
    std::fs::write(dir.join("c.jsonl.gz"), two).unwrap();
    let docs = read_documents(std::slice::from_ref(&dir)).unwrap();
    assert_eq!(
        docs,
        [
            "first line",
            "second line",
            "from gzip",
            "from gzip",
            "member two"
        ]
    );
    // not gzip inside: an error naming the file
    std::fs::write(dir.join("fake.jsonl.gz"), "{\"text\": \"plain\"}\n").unwrap();
    let e = read_documents(&[dir.join("fake.jsonl.gz")]).expect_err("not gzip");
    assert!(
        matches!(e, CorpusError::Io { .. }) && e.to_string().contains("fake.jsonl.gz"),
        "{e}"
    );
    // a gzipped Parquet file is not a format
    std::fs::write(dir.join("d.parquet.gz"), "x").unwrap();
    let e = read_documents(&[dir.join("d.parquet.gz")]).expect_err("parquet.gz");
    assert!(matches!(e, CorpusError::UnknownFormat { .. }), "{e}");
}

/// The Project Gutenberg validation books, as they ship (`valid.jsonl.gz`).
#[test]
fn the_gutenberg_validation_books_read() {
    let docs = read_documents(&[shared_data().join("gutenberg/valid.jsonl.gz")]).unwrap();
    // its README: 15 books, 0.91M words
    assert_eq!(docs.len(), 15);
    let words: usize = docs.iter().map(|d| d.split_whitespace().count()).sum();
    assert!((850_000..950_000).contains(&words), "{words} words");
}

/// Each problem said once, and said as what it is.
#[test]
fn load_errors_say_what_is_wrong_once() {
    let dir = temp_dir("load-errors");
    // bytes that are not UTF-8: the reason once, not again as its cause
    std::fs::write(
        dir.join("binary.txt"),
        [b'o', b'k', b'\n', 0xff, 0xfe, b'\n'],
    )
    .unwrap();
    let e = read_documents(&[dir.join("binary.txt")]).expect_err("not UTF-8");
    let shown = format!("{:#}", anyhow::Error::from(e));
    assert_eq!(shown.matches("UTF-8").count(), 1, "{shown}");
    assert!(shown.contains("binary.txt"), "{shown}");
    // JSON of another kind, and no JSON at all, as --tokenizer
    std::fs::write(dir.join("config.json"), "{\"a\": 1}").unwrap();
    let Err(e) = MarchTokenizer::load(&dir.join("config.json")) else {
        panic!("a JSON file of another kind loaded as a tokenizer");
    };
    assert!(
        e.to_string()
            .contains("JSON, but not a Hugging Face tokenizer.json"),
        "{e}"
    );
    std::fs::write(dir.join("notes.json"), "plain words").unwrap();
    let Err(e) = MarchTokenizer::load(&dir.join("notes.json")) else {
        panic!("a text file loaded as a tokenizer");
    };
    assert!(e.to_string().contains("not JSON"), "{e}");
}

#[test]
fn corpus_errors_name_the_file_and_the_problem() {
    let dir = temp_dir("errors");
    let err = |paths: &[PathBuf]| read_documents(paths).expect_err("an error");
    // unreadable
    let e = err(&[dir.join("nope.txt")]);
    assert!(
        matches!(e, CorpusError::Io { .. }) && e.to_string().contains("nope.txt"),
        "{e}"
    );
    // unknown format
    std::fs::write(dir.join("x.csv"), "a,b").unwrap();
    let e = err(&[dir.join("x.csv")]);
    assert!(
        matches!(e, CorpusError::UnknownFormat { .. }) && e.to_string().contains("x.csv"),
        "{e}"
    );
    // bad JSON line, and a line without text
    std::fs::write(dir.join("bad.jsonl"), "{\"text\": \"ok\"}\nnot json\n").unwrap();
    let e = err(&[dir.join("bad.jsonl")]);
    assert!(e.to_string().contains("bad.jsonl:2"), "{e}");
    std::fs::write(dir.join("notext.jsonl"), "{\"body\": \"ok\"}\n").unwrap();
    assert!(err(&[dir.join("notext.jsonl")])
        .to_string()
        .contains("no `text` field"));
    // Parquet: missing column, wrong type, corrupt file
    write_parquet(
        &dir.join("content.parquet"),
        "message m { REQUIRED BYTE_ARRAY content (UTF8); }",
        &["a"],
    );
    let e = err(&[dir.join("content.parquet")]);
    assert!(
        matches!(e, CorpusError::NoTextColumn { .. }) && e.to_string().contains("content"),
        "{e}"
    );
    {
        use parquet::data_type::Int64Type;
        use parquet::file::properties::WriterProperties;
        use parquet::file::writer::SerializedFileWriter;
        use parquet::schema::parser::parse_message_type;
        use std::sync::Arc;
        let schema = Arc::new(parse_message_type("message m { REQUIRED INT64 text; }").unwrap());
        let file = std::fs::File::create(dir.join("int.parquet")).unwrap();
        let mut w =
            SerializedFileWriter::new(file, schema, Arc::new(WriterProperties::builder().build()))
                .unwrap();
        let mut g = w.next_row_group().unwrap();
        let mut c = g.next_column().unwrap().unwrap();
        c.typed::<Int64Type>()
            .write_batch(&[1, 2], None, None)
            .unwrap();
        c.close().unwrap();
        g.close().unwrap();
        w.close().unwrap();
    }
    let e = err(&[dir.join("int.parquet")]);
    assert!(matches!(e, CorpusError::TextNotString { .. }), "{e}");
    std::fs::write(dir.join("corrupt.parquet"), b"PAR1 this is not parquet").unwrap();
    let e = err(&[dir.join("corrupt.parquet")]);
    assert!(
        matches!(e, CorpusError::BadParquet { .. }) && e.to_string().contains("corrupt.parquet"),
        "{e}"
    );
    // empty corpus, empty directory
    std::fs::write(dir.join("empty.txt"), "\n\n").unwrap();
    assert!(matches!(
        err(&[dir.join("empty.txt")]),
        CorpusError::Empty { .. }
    ));
    let empty_dir = dir.join("nothing");
    std::fs::create_dir_all(&empty_dir).unwrap();
    assert!(matches!(
        err(&[empty_dir]),
        CorpusError::EmptyDirectory { .. }
    ));
}

fn zstd(path: &std::path::Path, text: &str) -> Vec<u8> {
    let bytes = zstd::encode_all(text.as_bytes(), 3).unwrap();
    std::fs::write(path, &bytes).unwrap();
    bytes
}

/// The Pile and RedPajama ship as `.jsonl.zst`: zstd-compressed text and
/// JSON Lines read as their decompressed selves (every frame of a file of
/// several, as `zstd -d` reads it); a corrupt one is named.
#[test]
fn zstd_corpora_read() {
    let dir = temp_dir("zstd");
    zstd(&dir.join("a.txt.zst"), "first line\n\nsecond line\n");
    let mut two = zstd(&dir.join("b.jsonl.zst"), "{\"text\": \"frame one\"}\n");
    two.extend(zstd::encode_all(&b"{\"text\": \"frame two\"}\n"[..], 1).unwrap());
    std::fs::write(dir.join("c.jsonl.zst"), two).unwrap();
    let docs = read_documents(std::slice::from_ref(&dir)).unwrap();
    assert_eq!(
        docs,
        [
            "first line",
            "second line",
            "frame one",
            "frame one",
            "frame two"
        ]
    );
    std::fs::write(dir.join("fake.txt.zst"), "plain text\n").unwrap();
    let e = read_documents(&[dir.join("fake.txt.zst")]).expect_err("not zstd");
    assert!(
        matches!(e, CorpusError::Io { .. }) && e.to_string().contains("fake.txt.zst"),
        "{e}"
    );
    std::fs::write(dir.join("d.parquet.zst"), "x").unwrap();
    let e = read_documents(&[dir.join("d.parquet.zst")]).expect_err("parquet.zst");
    assert!(matches!(e, CorpusError::UnknownFormat { .. }), "{e}");
}

/// A pass over a corpus is streamed: documents come one at a time with
/// where the pass is, and the pass stops when asked.
#[test]
fn corpus_passes_stream_and_stop() {
    use march_runtime::data::corpus::for_each_document;
    use std::ops::ControlFlow;
    let dir = temp_dir("stream");
    let text: String = (0..1000).map(|i| format!("document {i}\n")).collect();
    std::fs::write(dir.join("a.txt"), &text).unwrap();
    gzip(&dir.join("b.txt.gz"), &text);
    let total = std::fs::metadata(dir.join("a.txt")).unwrap().len()
        + std::fs::metadata(dir.join("b.txt.gz")).unwrap().len();
    let mut seen = Vec::new();
    for_each_document(std::slice::from_ref(&dir), |d, at| {
        assert_eq!(at.total, total);
        seen.push((d, at.read));
        Ok::<_, CorpusError>(ControlFlow::Continue(()))
    })
    .unwrap();
    assert_eq!(seen.len(), 2000);
    assert_eq!(seen[1999].0, "document 999");
    assert!(
        seen.windows(2).all(|w| w[0].1 <= w[1].1),
        "progress only grows"
    );
    assert!(seen[1999].1 <= total && seen[1999].1 > total / 2);
    // stopped after three documents: no more are read
    let mut n = 0;
    for_each_document(std::slice::from_ref(&dir), |_, _| {
        n += 1;
        Ok::<_, CorpusError>(if n == 3 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        })
    })
    .unwrap();
    assert_eq!(n, 3);
}

/// The token store: u16 where the vocabulary allows, u32 beyond; whole
/// or absent (a cut-short file, another format, a writer dropped before
/// it finished: nothing to open, no temporary left); the cache format
/// before the store reads as a u32 store.
#[test]
fn token_store_round_trips() {
    use march_runtime::data::{StoreWriter, TokenStore};
    let dir = temp_dir("store");
    let tokens: Vec<u32> = (0..100_000u32).map(|i| (i * 7919) % 8192).collect();
    let mut w = StoreWriter::create(&dir.join("a.tokens"), 8192).unwrap();
    for part in tokens.chunks(999) {
        w.push(part).unwrap();
    }
    assert_eq!(w.len(), 100_000);
    let s = w.finish().unwrap();
    assert_eq!((s.len(), s.width()), (100_000, 2));
    assert_eq!(
        std::fs::metadata(dir.join("a.tokens")).unwrap().len(),
        16 + 2 * 100_000
    );
    assert_eq!(s.get(0, 100_000).unwrap(), tokens);
    assert_eq!(s.get(12_345, 3).unwrap(), tokens[12_345..12_348]);
    assert!(s.get(99_999, 2).is_err(), "past the end");
    let mut again = Vec::new();
    s.for_each_block(4096, |b| again.extend_from_slice(b))
        .unwrap();
    assert_eq!(again, tokens);
    let reopened = TokenStore::open(&dir.join("a.tokens")).unwrap();
    assert_eq!(reopened.get(777, 100).unwrap(), tokens[777..877]);

    // a vocabulary beyond 16 bits: u32
    let big = [0u32, 65_535, 65_536, 99_999];
    let mut w = StoreWriter::create(&dir.join("b.tokens"), 100_000).unwrap();
    w.push(&big).unwrap();
    let s = w.finish().unwrap();
    assert_eq!((s.width(), s.get(0, 4).unwrap()), (4, big.to_vec()));
    // a token too large for a u16 store is an error, not a wrap
    let mut w = StoreWriter::create(&dir.join("c.tokens"), 8192).unwrap();
    assert!(w.push(&[65_536]).is_err());
    drop(w);
    // dropped unfinished: no store, no temporary
    let mut w = StoreWriter::create(&dir.join("d.tokens"), 8192).unwrap();
    w.push(&tokens).unwrap();
    drop(w);
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".tmp") || n.starts_with("c.") || n.starts_with("d."))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // cut short, or not a store: absent
    let bytes = std::fs::read(dir.join("a.tokens")).unwrap();
    std::fs::write(dir.join("short.tokens"), &bytes[..bytes.len() - 1]).unwrap();
    assert!(TokenStore::open(&dir.join("short.tokens")).is_none());
    std::fs::write(dir.join("other.tokens"), b"not a token store at all").unwrap();
    assert!(TokenStore::open(&dir.join("other.tokens")).is_none());
    // the token cache's format before the store: u32 tokens
    let mut legacy = b"MARCHTOK".to_vec();
    legacy.extend(3u64.to_le_bytes());
    for t in [5u32, 70_000, 9] {
        legacy.extend(t.to_le_bytes());
    }
    std::fs::write(dir.join("legacy.tokens"), legacy).unwrap();
    let s = TokenStore::open(&dir.join("legacy.tokens")).unwrap();
    assert_eq!(s.get(0, 3).unwrap(), [5, 70_000, 9]);
}

/// Training chunks read from a store are the stream cut into chunks, less
/// the held-out ones; their token counts are those of the chunks.
#[test]
fn training_chunks_read_from_the_store() {
    use march_runtime::data::{cut, draw_ids, StoreWriter, TrainChunks};
    use std::sync::Arc;
    let dir = temp_dir("store-chunks");
    let stream: Vec<u32> = (0..50_000u32).map(|i| (i * 31 + i / 7) % 1000).collect();
    let mut w = StoreWriter::create(&dir.join("s.tokens"), 1000).unwrap();
    w.push(&stream).unwrap();
    let store = Arc::new(w.finish().unwrap());
    let len = 64;
    let all = cut(&stream, len);
    let (_, rest) = draw_ids(all.len(), &[30, 20]);
    let train = TrainChunks::new(store, len, rest.clone());
    let expect: Vec<Vec<u32>> = rest.iter().map(|&i| all[i].clone()).collect();
    assert_eq!(train.to_vecs().unwrap(), expect);
    assert_eq!(train.get(5).unwrap(), expect[5]);
    let mut counts = vec![0u64; 1000];
    for c in &expect {
        for &t in c {
            counts[t as usize] += 1;
        }
    }
    assert_eq!(train.token_counts(1000).unwrap(), counts);
    assert!(
        train.token_counts(500).is_err(),
        "tokens outside the vocabulary"
    );
}

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
    for chunk in chunks.train.iter().take(400) {
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
        chunks.train,
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

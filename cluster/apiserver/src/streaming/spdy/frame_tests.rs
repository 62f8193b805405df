use super::*;

/// Two SYN_STREAMs as kubectl opens a port-forward request's error and data streams, made by
/// C zlib (level 9, the SPDY dictionary, one stream across both header blocks, sync flushes),
/// as Go's compress/zlib makes them.
#[rustfmt::skip]
const KUBECTL_SYN_STREAMS: &[u8] = &[
    0x80, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3c, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x78, 0xf9, 0xe3, 0xc6, 0xa7, 0xc2, 0x02, 0x25, 0x3a, 0x48, 0xf9, 0x5b, 0x04, 0x4a,
    0xab, 0x4c, 0x16, 0x06, 0x40, 0x92, 0xb3, 0x08, 0x12, 0x5b, 0x99, 0xa0, 0x54, 0xcc, 0x68, 0x00,
    0x4e, 0x87, 0x25, 0x45, 0xa9, 0x89, 0xb9, 0xd0, 0xa2, 0x86, 0x35, 0x15, 0x14, 0x11, 0x00, 0x00,
    0x00, 0x00, 0xff, 0xff, 0x80, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x16, 0x00, 0x00, 0x00, 0x03,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x22, 0x4b, 0x2b, 0xa8, 0x94, 0x4a, 0x04, 0x00, 0x00, 0x00,
    0xff, 0xff,
];

fn headers(pairs: &[(&str, &str)]) -> Headers {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

fn decode_all(decoder: &mut FrameDecoder, bytes: &[u8]) -> Vec<Frame> {
    let mut buffer = BytesMut::from(bytes);
    let mut frames = Vec::new();
    while let Some(frame) = decoder.decode(&mut buffer).expect("valid frames") {
        frames.push(frame);
    }
    assert!(buffer.is_empty(), "bytes left over: {buffer:?}");
    frames
}

#[test]
fn kubectl_syn_streams_decode_with_one_zlib_context() {
    let frames = decode_all(&mut FrameDecoder::default(), KUBECTL_SYN_STREAMS);
    assert_eq!(
        frames,
        vec![
            Frame::SynStream {
                stream_id: 1,
                associated_to: 0,
                priority: 0,
                fin: false,
                headers: headers(&[("port", "80"), ("requestid", "0"), ("streamtype", "error")]),
            },
            Frame::SynStream {
                stream_id: 3,
                associated_to: 0,
                priority: 0,
                fin: false,
                headers: headers(&[("port", "80"), ("requestid", "0"), ("streamtype", "data")]),
            },
        ]
    );
}

#[test]
fn a_frame_waits_for_all_its_bytes() {
    let mut decoder = FrameDecoder::default();
    let mut buffer = BytesMut::from(&KUBECTL_SYN_STREAMS[..20]);
    assert_eq!(decoder.decode(&mut buffer).unwrap(), None);
    assert_eq!(
        buffer.len(),
        20,
        "nothing is consumed before the frame is whole"
    );
    buffer.extend_from_slice(&KUBECTL_SYN_STREAMS[20..]);
    assert!(matches!(
        decoder.decode(&mut buffer).unwrap(),
        Some(Frame::SynStream { stream_id: 1, .. })
    ));
}

#[test]
fn every_frame_round_trips() {
    let frames = vec![
        Frame::SynReply {
            stream_id: 1,
            fin: false,
            headers: Vec::new(),
        },
        Frame::SynStream {
            stream_id: 2,
            associated_to: 1,
            priority: 3,
            fin: true,
            headers: headers(&[("streamtype", "data"), ("port", "8080")]),
        },
        Frame::Headers {
            stream_id: 3,
            fin: true,
            headers: headers(&[("a", "1"), ("a", "2")]),
        },
        Frame::Data {
            stream_id: 3,
            fin: false,
            data: Bytes::from_static(b"GET / HTTP/1.1\r\n\r\n"),
        },
        Frame::Data {
            stream_id: 3,
            fin: true,
            data: Bytes::new(),
        },
        Frame::RstStream {
            stream_id: 5,
            status: RST_CANCEL,
        },
        Frame::Settings(vec![(1, 7, 65536)]),
        Frame::Ping(7),
        Frame::GoAway {
            last_good_stream_id: 9,
            status: 0,
        },
        Frame::WindowUpdate {
            stream_id: 3,
            delta: 4096,
        },
    ];
    let mut encoder = FrameEncoder::default();
    let mut bytes = BytesMut::new();
    for frame in &frames {
        encoder.encode(frame, &mut bytes);
    }
    // Headers with one name twice travel as one NUL-separated value and come back as two.
    assert_eq!(decode_all(&mut FrameDecoder::default(), &bytes), frames);
}

#[test]
fn frame_headers_have_the_spdy3_layout() {
    let mut bytes = BytesMut::new();
    let mut encoder = FrameEncoder::default();
    encoder.encode(&Frame::Ping(1), &mut bytes);
    assert_eq!(
        &bytes[..],
        &[0x80, 0x03, 0x00, 0x06, 0x00, 0x00, 0x00, 0x04, 0, 0, 0, 1]
    );
    bytes.clear();
    encoder.encode(
        &Frame::Data {
            stream_id: 3,
            fin: true,
            data: Bytes::from_static(b"ok"),
        },
        &mut bytes,
    );
    assert_eq!(&bytes[..], &[0, 0, 0, 3, 0x01, 0, 0, 2, b'o', b'k']);
}

#[test]
fn header_blocks_name_the_spdy_dictionary() {
    // zlib header (78 f9: FDICT set) then the dictionary's Adler-32, which the peer checks.
    let mut bytes = BytesMut::new();
    FrameEncoder::default().encode(
        &Frame::SynReply {
            stream_id: 1,
            fin: false,
            headers: Vec::new(),
        },
        &mut bytes,
    );
    assert_eq!(bytes[12] & 0x20, 0x20, "FDICT");
    assert_eq!(&bytes[14..18], &[0xe3, 0xc6, 0xa7, 0xc2]);
}

#[test]
fn broken_input_is_a_protocol_error() {
    let mut decoder = FrameDecoder::default();
    let mut wrong_version = BytesMut::from(&[0x80, 0x02, 0x00, 0x06, 0, 0, 0, 4, 0, 0, 0, 1][..]);
    assert!(decoder.decode(&mut wrong_version).is_err());
    let mut garbage_headers = BytesMut::from(
        &[
            0x80, 0x03, 0x00, 0x02, 0, 0, 0, 8, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef,
        ][..],
    );
    assert!(
        FrameDecoder::default()
            .decode(&mut garbage_headers)
            .is_err()
    );
    let mut short_ping = BytesMut::from(&[0x80, 0x03, 0x00, 0x06, 0, 0, 0, 2, 0, 1][..]);
    assert!(FrameDecoder::default().decode(&mut short_ping).is_err());
}

#[test]
fn unknown_control_frames_are_skipped() {
    let mut bytes = BytesMut::from(&[0x80, 0x03, 0x00, 0x0a, 0, 0, 0, 2, 9, 9][..]);
    FrameEncoder::default().encode(&Frame::Ping(3), &mut bytes);
    assert_eq!(
        decode_all(&mut FrameDecoder::default(), &bytes),
        vec![Frame::Ping(3)]
    );
}

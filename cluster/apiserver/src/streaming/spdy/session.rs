//! The server side of a SPDY/3.1 session, as the kubelet runs one for `kubectl port-forward`:
//! the client opens every stream; each gets a SYN_REPLY at once and is handed on as an
//! [`IncomingStream`]; client PINGs are answered; GOAWAY or the end of the connection ends the
//! session. One task writes every outgoing frame, in order, through one header compressor.

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::frame::{Frame, FrameDecoder, FrameEncoder, Headers, ProtocolError};

/// How many DATA chunks of one stream wait for its reader before the session stops reading
/// (spdystream has no flow control either: a slow stream holds the connection).
const INBOUND_QUEUE: usize = 16;
const OUTBOUND_QUEUE: usize = 64;

/// What the client sent on a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    Data(Bytes),
    /// RST_STREAM: the client dropped the stream; nothing more comes or is wanted.
    Reset,
}

/// A stream the client opened. `inbound` ends (yields `None`) at the client's FIN.
pub struct IncomingStream {
    pub id: u32,
    pub headers: Headers,
    pub inbound: mpsc::Receiver<Inbound>,
}

impl IncomingStream {
    /// The value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends frames on the session; cheap to clone, one per stream handler.
#[derive(Clone)]
pub struct Outbound(mpsc::Sender<Frame>);

impl Outbound {
    /// Sends `data` on stream `id`; false once the session has ended.
    pub async fn data(&self, id: u32, data: Bytes) -> bool {
        self.0
            .send(Frame::Data {
                stream_id: id,
                fin: false,
                data,
            })
            .await
            .is_ok()
    }

    /// Half-closes stream `id` (an empty DATA frame with FIN): the client reads its end.
    pub async fn finish(&self, id: u32) {
        let _ = self
            .0
            .send(Frame::Data {
                stream_id: id,
                fin: true,
                data: Bytes::new(),
            })
            .await;
    }
}

/// Runs the session on `io` until the client goes away; each new stream goes to `streams`
/// with the [`Outbound`] to answer on.
pub async fn serve<IO>(io: IO, streams: mpsc::UnboundedSender<(IncomingStream, Outbound)>)
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let (reader, writer) = tokio::io::split(io);
    let (frames, outgoing) = mpsc::channel(OUTBOUND_QUEUE);
    let outbound = Outbound(frames);
    tokio::select! {
        result = read_frames(reader, outbound, streams) => {
            if let Err(error) = result {
                tracing::debug!(%error, "port-forward session ended");
            }
        }
        () = write_frames(writer, outgoing) => {}
    }
}

async fn read_frames<R: AsyncRead + Unpin>(
    mut reader: R,
    outbound: Outbound,
    streams: mpsc::UnboundedSender<(IncomingStream, Outbound)>,
) -> Result<(), ProtocolError> {
    let mut decoder = FrameDecoder::default();
    let mut buffer = BytesMut::with_capacity(64 * 1024);
    let mut open: HashMap<u32, mpsc::Sender<Inbound>> = HashMap::new();
    loop {
        while let Some(frame) = decoder.decode(&mut buffer)? {
            if !handle(frame, &outbound, &streams, &mut open).await {
                return Ok(());
            }
        }
        match reader.read_buf(&mut buffer).await {
            Ok(0) | Err(_) => return Ok(()),
            Ok(_) => {}
        }
    }
}

/// Acts on one frame from the client; false when the session is over.
async fn handle(
    frame: Frame,
    outbound: &Outbound,
    streams: &mpsc::UnboundedSender<(IncomingStream, Outbound)>,
    open: &mut HashMap<u32, mpsc::Sender<Inbound>>,
) -> bool {
    match frame {
        Frame::SynStream {
            stream_id,
            fin,
            headers,
            ..
        } => {
            let reply = Frame::SynReply {
                stream_id,
                fin: false,
                headers: Vec::new(),
            };
            if outbound.0.send(reply).await.is_err() {
                return false;
            }
            let (sender, inbound) = mpsc::channel(INBOUND_QUEUE);
            if !fin {
                open.insert(stream_id, sender);
            }
            let stream = IncomingStream {
                id: stream_id,
                headers,
                inbound,
            };
            streams.send((stream, outbound.clone())).is_ok()
        }
        Frame::Data {
            stream_id,
            fin,
            data,
        } => {
            if let Some(sender) = open.get(&stream_id)
                && !data.is_empty()
                && sender.send(Inbound::Data(data)).await.is_err()
            {
                // The handler is gone; later data for the stream is dropped.
                open.remove(&stream_id);
            }
            if fin {
                open.remove(&stream_id);
            }
            true
        }
        Frame::RstStream { stream_id, .. } => {
            if let Some(sender) = open.remove(&stream_id) {
                let _ = sender.send(Inbound::Reset).await;
            }
            true
        }
        // Client pings have odd ids; answering with the same frame is the whole protocol.
        Frame::Ping(id) if id % 2 == 1 => outbound.0.send(Frame::Ping(id)).await.is_ok(),
        Frame::GoAway { .. } => false,
        _ => true,
    }
}

async fn write_frames<W: AsyncWrite + Unpin>(mut writer: W, mut outgoing: mpsc::Receiver<Frame>) {
    let mut encoder = FrameEncoder::default();
    let mut bytes = BytesMut::new();
    while let Some(frame) = outgoing.recv().await {
        encoder.encode(&frame, &mut bytes);
        // Whatever else is queued goes out in the same write.
        while let Ok(frame) = outgoing.try_recv() {
            encoder.encode(&frame, &mut bytes);
        }
        if writer.write_all(&bytes).await.is_err() || writer.flush().await.is_err() {
            return;
        }
        bytes.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes frames as the client; one encoder per session, as header blocks share a zlib
    /// stream.
    async fn client_sends(
        client: &mut tokio::io::DuplexStream,
        encoder: &mut FrameEncoder,
        frames: &[Frame],
    ) {
        let mut bytes = BytesMut::new();
        for frame in frames {
            encoder.encode(frame, &mut bytes);
        }
        client.write_all(&bytes).await.unwrap();
    }

    async fn client_reads(
        client: &mut tokio::io::DuplexStream,
        decoder: &mut FrameDecoder,
        buffer: &mut BytesMut,
    ) -> Frame {
        loop {
            if let Some(frame) = decoder.decode(buffer).unwrap() {
                return frame;
            }
            assert!(client.read_buf(buffer).await.unwrap() > 0, "session closed");
        }
    }

    fn syn(stream_id: u32, kind: &str) -> Frame {
        Frame::SynStream {
            stream_id,
            associated_to: 0,
            priority: 0,
            fin: false,
            headers: vec![
                ("streamtype".into(), kind.into()),
                ("port".into(), "80".into()),
                ("requestid".into(), "0".into()),
            ],
        }
    }

    #[tokio::test]
    async fn streams_are_replied_to_and_carry_data_both_ways() {
        let (mut client, server) = tokio::io::duplex(4096);
        let (streams, mut opened) = mpsc::unbounded_channel();
        let session = tokio::spawn(serve(server, streams));
        let mut decoder = FrameDecoder::default();
        let mut encoder = FrameEncoder::default();
        let mut buffer = BytesMut::new();

        client_sends(
            &mut client,
            &mut encoder,
            &[syn(1, "error"), Frame::Ping(1)],
        )
        .await;
        let reply = client_reads(&mut client, &mut decoder, &mut buffer).await;
        assert_eq!(
            reply,
            Frame::SynReply {
                stream_id: 1,
                fin: false,
                headers: vec![]
            }
        );
        assert_eq!(
            client_reads(&mut client, &mut decoder, &mut buffer).await,
            Frame::Ping(1)
        );
        let (stream, outbound) = opened.recv().await.unwrap();
        assert_eq!(stream.header("streamtype"), Some("error"));
        assert_eq!(stream.header("port"), Some("80"));

        let data = Frame::Data {
            stream_id: 1,
            fin: true,
            data: Bytes::from_static(b"hello"),
        };
        client_sends(&mut client, &mut encoder, &[data]).await;
        let mut inbound = stream.inbound;
        assert_eq!(
            inbound.recv().await,
            Some(Inbound::Data(Bytes::from_static(b"hello")))
        );
        assert_eq!(inbound.recv().await, None, "FIN ends the inbound side");

        assert!(outbound.data(1, Bytes::from_static(b"back")).await);
        outbound.finish(1).await;
        assert_eq!(
            client_reads(&mut client, &mut decoder, &mut buffer).await,
            Frame::Data {
                stream_id: 1,
                fin: false,
                data: Bytes::from_static(b"back")
            }
        );
        assert_eq!(
            client_reads(&mut client, &mut decoder, &mut buffer).await,
            Frame::Data {
                stream_id: 1,
                fin: true,
                data: Bytes::new()
            }
        );

        client_sends(&mut client, &mut encoder, &[syn(3, "data")]).await;
        let (data_stream, _) = opened.recv().await.unwrap();
        client_sends(
            &mut client,
            &mut encoder,
            &[Frame::RstStream {
                stream_id: 3,
                status: super::super::frame::RST_CANCEL,
            }],
        )
        .await;
        let mut inbound = data_stream.inbound;
        assert_eq!(inbound.recv().await, Some(Inbound::Reset));
        assert_eq!(inbound.recv().await, None);

        client_sends(
            &mut client,
            &mut encoder,
            &[Frame::GoAway {
                last_good_stream_id: 0,
                status: 0,
            }],
        )
        .await;
        session.await.unwrap();
    }

    #[tokio::test]
    async fn the_session_ends_with_the_connection() {
        let (client, server) = tokio::io::duplex(4096);
        let (streams, _opened) = mpsc::unbounded_channel();
        let session = tokio::spawn(serve(server, streams));
        drop(client);
        session.await.unwrap();
    }
}

//! Group commit: one thread appends what concurrent requests hand it and syncs once for all
//! of them, so `--fsync always` costs one `fdatasync` per burst, not per request.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Instant;

use crate::config::FsyncPolicy;
use crate::error::SpoolError;
use crate::record::NewRecord;
use crate::spool::Spool;

type Reply = tokio::sync::oneshot::Sender<Result<u64, SpoolError>>;

/// Most records appended (and synced) together.
const MAX_GROUP: usize = 512;
/// Most body bytes appended together.
const MAX_GROUP_BYTES: usize = 16 << 20;

/// Appends records from async code; each [`append`](Appender::append) resolves once its record
/// is as durable as the [`FsyncPolicy`] promises. Dropping every clone stops the thread after
/// a final sync.
#[derive(Clone)]
pub struct Appender {
    sender: mpsc::SyncSender<(NewRecord, Reply)>,
}

/// The appender's thread; [`join`](AppenderThread::join) waits for the final sync.
pub struct AppenderThread(Option<JoinHandle<()>>);

impl AppenderThread {
    /// Waits until every handed record is written and synced (all [`Appender`]s dropped).
    pub fn join(mut self) {
        if let Some(handle) = self.0.take() {
            let _ = handle.join();
        }
    }
}

impl Appender {
    /// Starts the appender thread for `spool`.
    pub fn start(spool: Spool) -> Result<(Appender, AppenderThread), SpoolError> {
        let (sender, receiver) = mpsc::sync_channel::<(NewRecord, Reply)>(4096);
        let handle = std::thread::Builder::new()
            .name("spool-appender".into())
            .spawn(move || run(&spool, &receiver))
            .map_err(|e| SpoolError::from_io("cannot start the spool appender", e))?;
        Ok((Appender { sender }, AppenderThread(Some(handle))))
    }

    /// Appends one record; resolves to its sequence once it is durable.
    pub async fn append(&self, record: NewRecord) -> Result<u64, SpoolError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let sender = self.sender.clone();
        // The channel is bounded: a full one means the disk is behind, so wait off the
        // async workers.
        match sender.try_send((record, reply)) {
            Ok(()) => {}
            Err(mpsc::TrySendError::Full(item)) => {
                tokio::task::spawn_blocking(move || sender.send(item))
                    .await
                    .map_err(|_| SpoolError::Closed)?
                    .map_err(|_| SpoolError::Closed)?;
            }
            Err(mpsc::TrySendError::Disconnected(_)) => return Err(SpoolError::Closed),
        }
        answer.await.map_err(|_| SpoolError::Closed)?
    }
}

fn run(spool: &Spool, receiver: &mpsc::Receiver<(NewRecord, Reply)>) {
    let config = spool.config().clone();
    let mut last_sync = Instant::now();
    let mut dirty = false;
    loop {
        let first = if config.fsync == FsyncPolicy::Interval && dirty {
            let wait = config.fsync_interval.saturating_sub(last_sync.elapsed());
            match receiver.recv_timeout(wait) {
                Ok(item) => Some(item),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        } else {
            match receiver.recv() {
                Ok(item) => Some(item),
                Err(_) => break,
            }
        };
        if let Some(first) = first {
            let mut records = vec![first.0];
            let mut replies = vec![first.1];
            let mut bytes = records[0].body.len();
            while records.len() < MAX_GROUP && bytes < MAX_GROUP_BYTES {
                match receiver.try_recv() {
                    Ok((record, reply)) => {
                        bytes += record.body.len();
                        records.push(record);
                        replies.push(reply);
                    }
                    Err(_) => break,
                }
            }
            match spool.append(&records) {
                Ok(sequences) => {
                    for (reply, seq) in replies.into_iter().zip(sequences) {
                        let _ = reply.send(Ok(seq));
                    }
                }
                Err(e) if records.len() > 1 && e.is_full() => {
                    // Together they do not fit; some alone may.
                    for (record, reply) in records.into_iter().zip(replies) {
                        let result = spool
                            .append(std::slice::from_ref(&record))
                            .map(|s| s.first().copied().unwrap_or(0));
                        let _ = reply.send(result);
                    }
                }
                Err(e) => {
                    for reply in replies {
                        let _ = reply.send(Err(e.clone()));
                    }
                }
            }
            dirty = true;
        }
        if config.fsync == FsyncPolicy::Interval
            && dirty
            && last_sync.elapsed() >= config.fsync_interval
        {
            if let Err(e) = spool.sync() {
                tracing::error!(error = %e, "spool sync failed");
            }
            last_sync = Instant::now();
            dirty = false;
        }
    }
    if config.fsync != FsyncPolicy::Never
        && let Err(e) = spool.sync()
    {
        tracing::error!(error = %e, "final spool sync failed");
    }
}

//! Relation sizes without opening relations.
//!
//! `pg_total_relation_size(oid)` opens every relation with an AccessShareLock: on 10 000
//! tables that is one lock-table entry per relation (the lock table can overflow) and a wait
//! behind any ACCESS EXCLUSIVE DDL.  Instead we read the database's directory once, sum the
//! segment files of every fork by relfilenode, and map relfilenodes to OIDs through
//! `pg_class` — no relation is opened, no lock is taken.
//!
//! The scan is cached for the duration of one client statement, so a full health report
//! that asks for table, index and bloat figures reads the directory once.

use std::cell::RefCell;
use std::collections::HashMap;

use super::catalog::{OidMap, OidSet};
use std::ffi::CStr;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use pgrx::prelude::*;

use super::error::HealthError;

const DEFAULT_TABLESPACE_OID: u32 = 1663;
const GLOBAL_TABLESPACE_OID: u32 = 1664;

/// What the files of one relation add up to.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RelStorage {
    /// Bytes in the main fork (what `pg_relation_size(oid)` reports).
    pub main_bytes: i64,
    /// Bytes in all forks: main, free-space map, visibility map, init.
    pub all_bytes: i64,
    /// Birth time of the main fork's first segment (seconds since the epoch), when the file
    /// system records it.  A rewrite (VACUUM FULL, REINDEX, TRUNCATE) renews it.
    pub born_epoch: Option<f64>,
}

/// Which fork a data file belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fork {
    Main,
    FreeSpace,
    Visibility,
    Init,
}

/// Parse a data file name: `<relfilenode>[_fsm|_vm|_init][.<segment>]`.
/// Anything else (`PG_VERSION`, `pg_filenode.map`, temporary `t<backend>_<n>` files) is `None`.
pub fn parse_data_file_name(name: &str) -> Option<(u32, Fork, u32)> {
    let (stem, segment) = match name.split_once('.') {
        Some((stem, seg)) => (stem, seg.parse::<u32>().ok()?),
        None => (name, 0),
    };
    let (number, fork) = match stem.split_once('_') {
        Some((n, "fsm")) => (n, Fork::FreeSpace),
        Some((n, "vm")) => (n, Fork::Visibility),
        Some((n, "init")) => (n, Fork::Init),
        Some(_) => return None,
        None => (stem, Fork::Main),
    };
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((number.parse::<u32>().ok()?, fork, segment))
}

/// One directory's data files summed by relfilenode, plus every byte in the directory
/// (what `pg_database_size` counts there: data files and the small bookkeeping files).
#[derive(Debug, Default)]
pub struct DirectoryScan {
    pub by_node: OidMap<RelStorage>,
    pub total_bytes: i64,
}

/// Below this many files one thread stats them all; above it the work is split.
const PARALLEL_THRESHOLD: usize = 4096;
const MAX_THREADS: usize = 4;

/// One directory entry to look at: where its NUL-terminated name starts in the name buffer,
/// and what the name says it is.
#[derive(Clone, Copy)]
struct Listed {
    name_at: usize,
    parsed: Option<(u32, Fork, u32)>,
}

/// What one `statx` tells us about one directory entry.
struct FileFacts {
    parsed: Option<(u32, Fork, u32)>,
    len: i64,
    born_epoch: Option<f64>,
}

/// An open directory (closed on drop).
struct Dir(*mut libc::DIR);

impl Dir {
    fn open(dir: &Path) -> Result<Dir, HealthError> {
        let unreadable = |e: std::io::Error| HealthError::StorageUnreadable { path: dir.display().to_string(), reason: e.to_string() };
        let path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
            .map_err(|e| unreadable(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
        // SAFETY: opendir reads a NUL-terminated path; the handle is closed by Dir's drop.
        let handle = unsafe { libc::opendir(path.as_ptr()) };
        if handle.is_null() {
            return Err(unreadable(std::io::Error::last_os_error()));
        }
        Ok(Dir(handle))
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        // SAFETY: the pointer came from a successful opendir and is closed once.
        unsafe {
            libc::closedir(self.0);
        }
    }
}

/// `statx` the listed entries relative to the directory `fd`.  Only system calls, no
/// allocation through palloc and no PostgreSQL function: safe on a helper thread.
fn stat_entries(fd: libc::c_int, names: &[u8], entries: &[Listed]) -> Vec<FileFacts> {
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        let Some(name) = names.get(entry.name_at..) else { continue };
        // SAFETY: libc::statx is plain C data (integers only), for which all-zero bytes are a valid value.
        let mut buf: libc::statx = unsafe { std::mem::zeroed() };
        // SAFETY: statx writes only into `buf`; `name` starts at a NUL-terminated entry inside `names`; `fd` is the
        // descriptor of a directory whose Dir the caller keeps open for the whole call.
        let rc = unsafe {
            libc::statx(
                fd,
                name.as_ptr().cast(),
                libc::AT_SYMLINK_NOFOLLOW,
                libc::STATX_TYPE | libc::STATX_SIZE | libc::STATX_BTIME,
                &mut buf,
            )
        };
        // A file dropped between the listing and the statx is simply gone: skip it.
        if rc != 0 || u32::from(buf.stx_mode) & libc::S_IFMT != libc::S_IFREG {
            continue;
        }
        let born_epoch = match entry.parsed {
            Some((_, Fork::Main, 0)) if buf.stx_mask & libc::STATX_BTIME != 0 => {
                Some(buf.stx_btime.tv_sec as f64 + f64::from(buf.stx_btime.tv_nsec) / 1e9)
            }
            _ => None,
        };
        out.push(FileFacts { parsed: entry.parsed, len: i64::try_from(buf.stx_size).unwrap_or(i64::MAX), born_epoch });
    }
    out
}

/// `statx` every entry, on several threads when there are many.  The threads only make
/// system calls and run with every signal blocked, so PostgreSQL's signal handlers keep
/// running on the backend's own thread.
fn stat_all(fd: libc::c_int, names: &[u8], entries: &[Listed]) -> Vec<FileFacts> {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(MAX_THREADS);
    if entries.len() < PARALLEL_THRESHOLD || threads < 2 {
        return stat_entries(fd, names, entries);
    }
    let chunk = entries.len().div_ceil(threads);
    let _blocked = SignalsBlocked::new();
    std::thread::scope(|scope| {
        let handles: Vec<_> = entries
            .chunks(chunk)
            .skip(1)
            .map(|part| std::thread::Builder::new().spawn_scoped(scope, move || stat_entries(fd, names, part)))
            .collect();
        // Signals are blocked only while the helpers are started: they inherit the mask,
        // and this thread takes pending signals again as soon as `_blocked` is dropped.
        drop(_blocked);
        let mut all = stat_entries(fd, names, entries.chunks(chunk).next().unwrap_or(&[]));
        for (i, handle) in handles.into_iter().enumerate() {
            match handle.map(|h| h.join()) {
                Ok(Ok(part)) => all.extend(part),
                // A thread that could not start or failed: do its share here.
                _ => all.extend(stat_entries(fd, names, entries.chunks(chunk).nth(i + 1).unwrap_or(&[]))),
            }
        }
        all
    })
}

/// Blocks every signal on the current thread until dropped (restoring the previous mask).
struct SignalsBlocked {
    previous: Option<libc::sigset_t>,
}

impl SignalsBlocked {
    fn new() -> Self {
        // SAFETY: sigset_t is plain data; sigfillset and pthread_sigmask only write to it.
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut previous: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            if libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut previous) == 0 {
                SignalsBlocked { previous: Some(previous) }
            } else {
                SignalsBlocked { previous: None }
            }
        }
    }
}

impl Drop for SignalsBlocked {
    fn drop(&mut self) {
        if let Some(previous) = self.previous.take() {
            // SAFETY: restores the mask saved in `new` on the same thread.
            unsafe {
                libc::pthread_sigmask(libc::SIG_SETMASK, &previous, std::ptr::null_mut());
            }
        }
    }
}

/// Sum the files of one directory by relfilenode.  With `wanted`, only files of those
/// relfilenodes are looked at (a `statx` is the expensive part: listing names is cheap);
/// without it every file is, and `total_bytes` covers the whole directory.  The listing is
/// read with `readdir` into one name buffer: no allocation per entry.
pub fn scan_directory(dir: &Path, wanted: Option<&OidSet>) -> Result<DirectoryScan, HealthError> {
    let handle = Dir::open(dir)?;
    let mut names: Vec<u8> = Vec::with_capacity(1 << 16);
    let mut listed: Vec<Listed> = Vec::new();
    loop {
        // SAFETY: readdir returns NULL at the end or a pointer valid until the next call.
        let entry = unsafe { libc::readdir(handle.0) };
        if entry.is_null() {
            break;
        }
        // SAFETY: d_name is NUL-terminated.
        let name = unsafe { CStr::from_ptr((*entry).d_name.as_ptr()) }.to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        let parsed = std::str::from_utf8(name).ok().and_then(parse_data_file_name);
        if let Some(set) = wanted {
            if !parsed.is_some_and(|(node, _, _)| set.contains(&node)) {
                continue;
            }
        }
        listed.push(Listed { name_at: names.len(), parsed });
        names.extend_from_slice(name);
        names.push(0);
    }
    // SAFETY: the handle is open until `handle` is dropped below.
    let fd = unsafe { libc::dirfd(handle.0) };
    let mut scan = DirectoryScan::default();
    scan.by_node.reserve(listed.len());
    for facts in stat_all(fd, &names, &listed) {
        scan.total_bytes = scan.total_bytes.saturating_add(facts.len);
        let Some((filenode, fork, segment)) = facts.parsed else { continue };
        let slot = scan.by_node.entry(filenode).or_default();
        slot.all_bytes = slot.all_bytes.saturating_add(facts.len);
        if fork == Fork::Main {
            slot.main_bytes = slot.main_bytes.saturating_add(facts.len);
            if segment == 0 {
                slot.born_epoch = facts.born_epoch;
            }
        }
    }
    drop(handle);
    Ok(scan)
}

/// Bytes of one segment file when it is full (`RELSEG_SIZE` blocks): a relation continues in
/// `<filenode>.1`, `.2`, … only after a full segment.
fn segment_bytes() -> u64 {
    u64::from(pg_sys::RELSEG_SIZE) * crate::common::block_size()
}

/// Sizes of the main forks of `nodes` in `dir`, without listing the directory: one `statx`
/// of `<filenode>` each (and of the next segments of a relation whose segment is full).
/// `all_bytes` is left equal to `main_bytes`: callers that need every fork use `scan_directory`.
pub fn stat_main_forks(dir: &Path, nodes: &[u32]) -> Result<DirectoryScan, HealthError> {
    // The directory is opened (not listed) for its descriptor: names are looked up relative to it.
    let handle = Dir::open(dir)?;
    // SAFETY: the handle is open until `handle` is dropped below.
    let fd = unsafe { libc::dirfd(handle.0) };
    let full = segment_bytes();
    let mut scan = DirectoryScan::default();
    scan.by_node.reserve(nodes.len());
    let mut segment = 0u32;
    let mut pending: Vec<u32> = nodes.to_vec();
    while !pending.is_empty() {
        let mut names: Vec<u8> = Vec::with_capacity(pending.len() * 12);
        let mut listed: Vec<Listed> = Vec::with_capacity(pending.len());
        for node in &pending {
            listed.push(Listed { name_at: names.len(), parsed: Some((*node, Fork::Main, segment)) });
            if segment == 0 {
                names.extend_from_slice(node.to_string().as_bytes());
            } else {
                names.extend_from_slice(format!("{node}.{segment}").as_bytes());
            }
            names.push(0);
        }
        let mut next = Vec::new();
        for facts in stat_all(fd, &names, &listed) {
            let Some((node, _, _)) = facts.parsed else { continue };
            let slot = scan.by_node.entry(node).or_default();
            slot.main_bytes = slot.main_bytes.saturating_add(facts.len);
            slot.all_bytes = slot.main_bytes;
            if segment == 0 {
                slot.born_epoch = facts.born_epoch;
            }
            scan.total_bytes = scan.total_bytes.saturating_add(facts.len);
            if u64::try_from(facts.len).is_ok_and(|len| len >= full) {
                next.push(node);
            }
        }
        pending = next;
        segment += 1;
    }
    drop(handle);
    Ok(scan)
}

fn data_directory() -> PathBuf {
    // SAFETY: DataDir is set once at postmaster start and never changes afterwards.
    unsafe {
        if pg_sys::DataDir.is_null() {
            PathBuf::from(".")
        } else {
            PathBuf::from(CStr::from_ptr(pg_sys::DataDir).to_string_lossy().into_owned())
        }
    }
}

/// The directory holding this database's files in tablespace `spc`.
fn tablespace_directory(spc: u32, db: u32) -> Result<PathBuf, HealthError> {
    let data = data_directory();
    if spc == DEFAULT_TABLESPACE_OID {
        return Ok(data.join("base").join(db.to_string()));
    }
    // pg_tblspc/<spc>/PG_<major>_<catversion>/<db>: find this server's version directory.
    let link = data.join("pg_tblspc").join(spc.to_string());
    let prefix = format!("PG_{}_", pg_sys::PG_VERSION_NUM / 10000);
    let entries = std::fs::read_dir(&link).map_err(|e| HealthError::StorageUnreadable {
        path: link.display().to_string(),
        reason: e.to_string(),
    })?;
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            return Ok(entry.path().join(db.to_string()));
        }
    }
    Err(HealthError::StorageUnreadable {
        path: link.display().to_string(),
        reason: format!("no {prefix}* directory"),
    })
}

/// Which relations a caller needs sizes for.  Each part is a bit; a scan covers a set of parts.
pub const HEAP: u8 = 1;
/// TOAST tables and their indexes.
pub const TOAST: u8 = 2;
/// Indexes of user tables.
pub const INDEX: u8 = 4;
/// Every file of the database's directories (for the database's total size).
pub const EVERYTHING: u8 = 8;
/// Only the main forks are needed (`main_bytes`, `born_epoch`): the files are looked up by
/// name instead of listing the directory.  `all_bytes` is then not the total of every fork.
pub const MAIN_ONLY: u8 = 16;

/// Everything one scan learned: sizes by relation OID and the database's total bytes.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub by_oid: OidMap<RelStorage>,
    /// Every byte in this database's directories (what `pg_database_size` reports);
    /// only when the scan covered `EVERYTHING`.
    pub database_bytes: i64,
    /// The parts this scan covered.
    pub parts: u8,
    /// Only main forks were looked at (see `MAIN_ONLY`).
    pub main_only: bool,
}

thread_local! {
    static CACHE: RefCell<Option<(CacheKey, Rc<Snapshot>)>> = const { RefCell::new(None) };
}

/// The key of every per-statement cache: the start of the current client statement and the
/// current command id, so a change made within the statement (an ANALYZE, an INSERT in a
/// procedure) is seen by the next call instead of a cached figure.
pub type CacheKey = (i64, u32);

pub fn statement_stamp() -> CacheKey {
    // SAFETY: plain reads of backend-local state.
    unsafe { (pg_sys::GetCurrentStatementStartTimestamp(), pg_sys::GetCurrentCommandId(false)) }
}

/// Sizes of the relations in `parts`, cached for the current client statement: a later call
/// in the same statement that needs no more parts reuses the scan; one that needs more scans
/// again for everything asked so far.
pub fn snapshot(parts: u8) -> Result<Rc<Snapshot>, HealthError> {
    let stamp = statement_stamp();
    let main_only = parts & MAIN_ONLY != 0;
    let parts = parts & !MAIN_ONLY;
    let previous = CACHE.with(|c| c.borrow().as_ref().filter(|(s, _)| *s == stamp).map(|(_, m)| Rc::clone(m)));
    if let Some(hit) = &previous {
        if hit.parts & parts == parts && (main_only || !hit.main_only) {
            return Ok(Rc::clone(hit));
        }
    }
    let mut wanted = parts | previous.as_ref().map(|p| p.parts).unwrap_or(0);
    // A full scan is never replaced by a main-forks-only one.
    let mut main_only = main_only && previous.as_ref().is_none_or(|p| p.main_only);
    if wanted & EVERYTHING != 0 {
        // Every file is looked at anyway: map every relation too.
        wanted = HEAP | TOAST | INDEX | EVERYTHING;
        main_only = false;
    }
    let fresh = match take_prefetched(stamp, wanted, main_only) {
        Some(done) => Rc::new(done?),
        None => Rc::new(scan_all(wanted, main_only)?),
    };
    CACHE.with(|c| *c.borrow_mut() = Some((stamp, Rc::clone(&fresh))));
    Ok(fresh)
}

/// One directory to scan and the relations whose files are in it.
struct Job {
    dir: PathBuf,
    rels: Vec<(u32, u32)>,
}

/// How one directory is scanned (see `scan_directory` and `stat_main_forks`).
#[derive(Clone, Copy)]
enum Mode {
    Everything,
    MainForks,
    Filtered,
}

/// A directory's scan result, with a failure as plain strings so it can cross threads.
type JobResult = Result<DirectoryScan, (String, String)>;

fn run_job(dir: &Path, rels: &[(u32, u32)], mode: Mode) -> JobResult {
    let result = match mode {
        Mode::Everything => scan_directory(dir, None),
        Mode::MainForks => {
            let mut nodes: Vec<u32> = rels.iter().map(|(_, node)| *node).collect();
            nodes.sort_unstable();
            nodes.dedup();
            stat_main_forks(dir, &nodes)
        }
        Mode::Filtered => {
            let wanted: OidSet = rels.iter().map(|(_, node)| *node).collect();
            scan_directory(dir, Some(&wanted))
        }
    };
    result.map_err(|e| match e {
        HealthError::StorageUnreadable { path, reason } => (path, reason),
        other => (dir.display().to_string(), other.to_string()),
    })
}

/// Scans each directory of the plan: system calls only, so it may run on a helper thread.
fn run_jobs(jobs: Vec<Job>, mode: Mode) -> Vec<(Vec<(u32, u32)>, JobResult)> {
    jobs.into_iter()
        .map(|job| {
            let files = run_job(&job.dir, &job.rels, mode);
            (job.rels, files)
        })
        .collect()
}

/// Which directories to scan for `parts`, from the catalog (backend thread only).
fn plan(parts: u8) -> Result<Vec<Job>, HealthError> {
    // SAFETY: backend-local globals, set before any function can run.
    let (db, db_spc) = unsafe { (pg_sys::MyDatabaseId.to_u32(), pg_sys::MyDatabaseTableSpace.to_u32()) };

    // relfilenode -> oid, per effective tablespace, with the part each relation belongs to.
    // Temporary relations live in other files (t<backend>_<n>), mapped catalogs have
    // relfilenode 0, and sequences (always one page) are sized by no metric.
    let catalog = super::catalog::catalog().map_err(HealthError::Report)?;
    let mut by_spc: HashMap<u32, Vec<(u32, u32)>> = HashMap::new();
    // The database's default tablespace is always scanned, even when it holds no user table.
    by_spc.entry(db_spc).or_default();
    for r in &catalog.rels {
        if !(matches!(r.kind, b'r' | b'i' | b't' | b'm') && r.persistence != b't' && r.filenode != 0) {
            continue;
        }
        let part = match r.kind {
            b'r' | b'm' => HEAP,
            _ if r.kind == b't' || Some(r.namespace) == catalog.toast_namespace => TOAST,
            _ => INDEX,
        };
        if part & parts == 0 {
            continue;
        }
        let effective = if r.tablespace == 0 { db_spc } else { r.tablespace };
        if effective == GLOBAL_TABLESPACE_OID {
            continue;
        }
        by_spc.entry(effective).or_default().push((r.oid, r.filenode));
    }
    by_spc.into_iter().map(|(spc, rels)| Ok(Job { dir: tablespace_directory(spc, db)?, rels })).collect()
}

fn mode_for(parts: u8, main_only: bool) -> Mode {
    if parts & EVERYTHING != 0 {
        Mode::Everything
    } else if main_only {
        Mode::MainForks
    } else {
        Mode::Filtered
    }
}

fn assemble(parts: u8, main_only: bool, jobs: Vec<(Vec<(u32, u32)>, JobResult)>) -> Result<Snapshot, HealthError> {
    let mut result = Snapshot { parts, main_only, ..Snapshot::default() };
    // Sized once: on 100 000 tables growing it rehashed 500 000 entries several times.
    result.by_oid.reserve(jobs.iter().map(|(rels, _)| rels.len()).sum());
    for (rels, files) in jobs {
        let files = files.map_err(|(path, reason)| HealthError::StorageUnreadable { path, reason })?;
        result.database_bytes = result.database_bytes.saturating_add(files.total_bytes);
        for (oid, node) in rels {
            result.by_oid.insert(oid, files.by_node.get(&node).copied().unwrap_or_default());
        }
    }
    Ok(result)
}

fn scan_all(parts: u8, main_only: bool) -> Result<Snapshot, HealthError> {
    let jobs = run_jobs(plan(parts)?, mode_for(parts, main_only));
    assemble(parts, main_only, jobs)
}

/// A scan started by `prefetch` on a helper thread, for the statement `stamp`.
struct Pending {
    stamp: CacheKey,
    parts: u8,
    main_only: bool,
    handle: std::thread::JoinHandle<Vec<(Vec<(u32, u32)>, JobResult)>>,
}

thread_local! {
    static PENDING: RefCell<Option<Pending>> = const { RefCell::new(None) };
}

/// Starts the scan `snapshot(parts)` will need on a helper thread, so the file system calls
/// run on the second core while this backend reads catalogs and statistics.  The helper only
/// makes system calls (no PostgreSQL function, no palloc) with every signal blocked; if the
/// statement fails before the result is used, the helper finishes on its own and its result
/// is dropped.  Does nothing when the statement already has what `parts` needs.
pub fn prefetch(parts: u8) {
    let stamp = statement_stamp();
    let main_only = parts & MAIN_ONLY != 0;
    let parts = parts & !MAIN_ONLY;
    let cached = CACHE.with(|c| {
        c.borrow().as_ref().is_some_and(|(s, m)| *s == stamp && m.parts & parts == parts && (main_only || !m.main_only))
    });
    let pending = PENDING.with(|p| p.borrow().as_ref().is_some_and(|p| p.stamp == stamp));
    if cached || pending {
        return;
    }
    let (parts, main_only) = if parts & EVERYTHING != 0 { (HEAP | TOAST | INDEX | EVERYTHING, false) } else { (parts, main_only) };
    let Ok(jobs) = plan(parts) else { return };
    let mode = mode_for(parts, main_only);
    let blocked = SignalsBlocked::new();
    let spawned = std::thread::Builder::new().name("pg_steward storage scan".into()).spawn(move || run_jobs(jobs, mode));
    drop(blocked);
    if let Ok(handle) = spawned {
        PENDING.with(|p| *p.borrow_mut() = Some(Pending { stamp, parts, main_only, handle }));
    }
}

/// The prefetched scan of this statement when it covers `parts` (waiting for it if needed).
fn take_prefetched(stamp: CacheKey, parts: u8, main_only: bool) -> Option<Result<Snapshot, HealthError>> {
    let pending = PENDING.with(|p| p.borrow_mut().take())?;
    if pending.stamp != stamp || pending.parts & parts != parts || (pending.main_only && !main_only) {
        // Another statement's, or not enough: keep it only if it is this statement's.
        if pending.stamp == stamp {
            PENDING.with(|p| *p.borrow_mut() = Some(pending));
        }
        return None;
    }
    let jobs = pending.handle.join().ok()?;
    Some(assemble(pending.parts, pending.main_only, jobs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_data_file_names() {
        assert_eq!(parse_data_file_name("16384"), Some((16384, Fork::Main, 0)));
        assert_eq!(parse_data_file_name("16384.2"), Some((16384, Fork::Main, 2)));
        assert_eq!(parse_data_file_name("16384_fsm"), Some((16384, Fork::FreeSpace, 0)));
        assert_eq!(parse_data_file_name("16384_vm"), Some((16384, Fork::Visibility, 0)));
        assert_eq!(parse_data_file_name("16384_init"), Some((16384, Fork::Init, 0)));
        assert_eq!(parse_data_file_name("16384_fsm.1"), Some((16384, Fork::FreeSpace, 1)));
        assert_eq!(parse_data_file_name("PG_VERSION"), None);
        assert_eq!(parse_data_file_name("pg_filenode.map"), None);
        assert_eq!(parse_data_file_name("t3_16384"), None);
        assert_eq!(parse_data_file_name("16384_xyz"), None);
        assert_eq!(parse_data_file_name("16384.x"), None);
        assert_eq!(parse_data_file_name(""), None);
    }
}

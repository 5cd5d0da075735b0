#include "sentinel/storage/store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

#include <nlohmann/json.hpp>

#include "sentinel/base/files.h"
#include "sentinel/base/time.h"
#include "sentinel/crypto/siphash.h"

namespace sentinel::storage {
namespace {

Status EnsureParentDirectory(const std::string& path) {
  std::filesystem::path p(path);
  auto parent = p.parent_path();
  if (parent.empty()) return Status::Ok();
  std::error_code ec;
  if (std::filesystem::is_directory(parent, ec)) return Status::Ok();
  // Create missing levels with restrictive permissions.
  Result<std::vector<std::string>> created = CreateDirectories(parent.string(), 0750);
  if (!created.ok()) return created.status().WithContext("creating data directory");
  return Status::Ok();
}

// Creates the database file with mode 0640 before SQLite does (SQLite would
// use 0644); its -wal and -shm files inherit the main file's mode.
Status PrecreateFile(const std::string& path) {
#ifdef _WIN32
  // Access comes from the directory's ACLs (files_windows.cc).
  Result<UniqueFd> fd = OpenRegularNoFollow(path, O_WRONLY | O_CREAT | O_EXCL);
  if (fd.ok() || fd.status().code() == StatusCode::kAlreadyExists) return Status::Ok();
  return fd.status().WithContext("creating database " + path);
#else
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640));
  if (fd.get() >= 0) return Status::Ok();
  if (errno == EEXIST) return Status::Ok();
  return ErrnoError(errno, "creating database " + path);
#endif
}

// Reads the 100-byte SQLite header and refuses a file that is not SQLite,
// belongs to another program or has a newer schema, before any statement
// runs (the first read of a WAL database creates its -wal/-shm side files).
//
// The header is read through the connection's own file handle, never a
// separate open()/close() of the path: closing any descriptor of a file
// drops every POSIX lock the process holds on it, including those of its
// other SQLite connections. Another process would then believe itself the
// last user, and delete the WAL and shared-memory files under them on
// close — which is what happened to the agent when procmond stopped.
Status CheckHeader(DatabaseKind kind, Database& db, const std::string& path) {
  sqlite3_file* file = nullptr;
  if (sqlite3_file_control(db.raw(), "main", SQLITE_FCNTL_FILE_POINTER, &file) != SQLITE_OK ||
      file == nullptr || file->pMethods == nullptr) {
    return Status::Ok();  // nothing to inspect: SQLite's own checks follow
  }
  sqlite3_int64 size = 0;
  if (file->pMethods->xFileSize(file, &size) != SQLITE_OK) return Status::Ok();
  if (size == 0) return Status::Ok();  // an empty file is an empty database
  unsigned char h[100] = {};
  const int rc = file->pMethods->xRead(file, h, sizeof h, 0);
  if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ) {
    return SqliteError(rc, path + ": reading the database header");
  }
  const ssize_t n = size < static_cast<sqlite3_int64>(sizeof h) ? static_cast<ssize_t>(size)
                                                                : static_cast<ssize_t>(sizeof h);
  const std::string what = path + ": not a SentinelD " + std::string(KindName(kind));
  if (n < static_cast<ssize_t>(sizeof h) || std::memcmp(h, "SQLite format 3", 16) != 0) {
    return InvalidArgumentError(what + " (file is not a database)");
  }
  auto be32 = [&](int off) {
    return static_cast<uint32_t>(h[off]) << 24 | static_cast<uint32_t>(h[off + 1]) << 16 |
           static_cast<uint32_t>(h[off + 2]) << 8 | static_cast<uint32_t>(h[off + 3]);
  };
  const uint32_t app_id = be32(68);
  const uint32_t version = be32(60);
  if (app_id != 0 && app_id != ApplicationId(kind)) {
    for (DatabaseKind k : kAllDatabaseKinds) {
      if (app_id == ApplicationId(k)) {
        return FailedPreconditionError(what + " (it is a SentinelD " + std::string(KindName(k)) +
                                       "); refusing to use it");
      }
    }
    return FailedPreconditionError(what + " (a database written by another program); refusing to use it");
  }
  if (app_id == ApplicationId(kind) && static_cast<int>(version) > LatestSchemaVersion(kind)) {
    return FailedPreconditionError(
        path + ": schema version " + std::to_string(version) + " is newer than this binary supports (" +
        std::to_string(LatestSchemaVersion(kind)) + "); upgrade SentinelD before using this database");
  }
  return Status::Ok();
}

// For a file no WAL-mode connection has open (no -wal beside it), so that the file alone is the
// whole database: refuses one shorter than the pages its header counts (a copy cut short, a disk
// that lost its tail; SQLite only notices when a query reaches a missing page) and one without
// SentinelD's application id that holds more than its first page (another program's tables; a
// store SentinelD creates has its id from the first transaction that adds a page). The in-header
// size counts only when valid: non-zero, and the change counter equal to version-valid-for.
Status CheckQuiescentFile(DatabaseKind kind, Database& db, const std::string& path) {
  sqlite3_file* file = nullptr;
  if (sqlite3_file_control(db.raw(), "main", SQLITE_FCNTL_FILE_POINTER, &file) != SQLITE_OK ||
      file == nullptr || file->pMethods == nullptr) {
    return Status::Ok();
  }
  sqlite3_int64 size = 0;
  if (file->pMethods->xFileSize(file, &size) != SQLITE_OK || size < 100) return Status::Ok();
  unsigned char h[100] = {};
  if (file->pMethods->xRead(file, h, sizeof h, 0) != SQLITE_OK) return Status::Ok();
  auto be32 = [&](int off) {
    return static_cast<uint32_t>(h[off]) << 24 | static_cast<uint32_t>(h[off + 1]) << 16 |
           static_cast<uint32_t>(h[off + 2]) << 8 | static_cast<uint32_t>(h[off + 3]);
  };
  const uint32_t raw_page_size = static_cast<uint32_t>(h[16]) << 8 | h[17];
  const int64_t page_size = raw_page_size == 1 ? 65536 : raw_page_size;
  if (page_size < 512) return Status::Ok();  // not a page size: SQLite refuses the file itself
  const bool header_size_valid = be32(28) != 0 && be32(24) == be32(92);
  const int64_t pages = header_size_valid ? be32(28) : size / page_size;
  if (size < pages * page_size) {
    return DataLossError(path + ": not a usable SentinelD " + std::string(KindName(kind)) +
                         " (truncated: " + std::to_string(size) + " bytes, its header counts " +
                         std::to_string(pages) + " pages of " + std::to_string(page_size) + ")");
  }
  if (be32(68) == 0 && pages > 1) {
    return FailedPreconditionError(path + ": not a SentinelD " + std::string(KindName(kind)) +
                                   " (a database written by another program); refusing to use it");
  }
  return Status::Ok();
}

void AppendLength(std::string* s, size_t n) {
  uint64_t v = n;
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
  char b[8];
  std::memcpy(b, &v, sizeof b);  // little-endian on every host
  s->append(b, sizeof b);
}

}  // namespace

EventStore::ImageDigest EventStore::DigestImage(const std::string& name,
                                                const std::optional<std::string>& exe_path,
                                                const std::optional<std::vector<std::string>>& argv,
                                                std::string* scratch) {
  static const crypto::SipHashKey kKey = crypto::SipHashKey::Random();
  // Unambiguous encoding: every string length-prefixed, absence marked.
  std::string& s = *scratch;
  s.clear();
  AppendLength(&s, name.size());
  s += name;
  s.push_back(exe_path ? '\1' : '\0');
  if (exe_path) {
    AppendLength(&s, exe_path->size());
    s += *exe_path;
  }
  s.push_back(argv ? '\1' : '\0');
  if (argv) {
    AppendLength(&s, argv->size());
    for (const std::string& a : *argv) {
      AppendLength(&s, a.size());
      s += a;
    }
  }
  const crypto::SipHash128Digest digest = crypto::SipHash128(kKey, s);
  // A 128 KiB command line must not pin its buffer for good.
  if (s.capacity() > 65536) std::string().swap(s);
  return ImageDigest{digest.lo, digest.hi};
}

namespace {

constexpr const char* kSideSuffixes[] = {"", "-wal", "-shm", "-journal"};

// Before a read-write open: the directory exists, no planted link stands at
// the file or its side files, and the file exists with mode 0640 (returns
// whether this call created it) and is writable.
Result<bool> PrepareReadWrite(const std::string& path) {
  RETURN_IF_ERROR(EnsureParentDirectory(path));
  // A planted link is refused before anything is created (Database::Open
  // checks again, with SQLite's own O_NOFOLLOW behind it).
  for (const char* suffix : kSideSuffixes) RETURN_IF_ERROR(RefuseSymlink(path + suffix));
  std::error_code ec;
  const std::filesystem::file_status st = std::filesystem::symlink_status(path, ec);
  if (!std::filesystem::exists(st)) {
    RETURN_IF_ERROR(PrecreateFile(path));
    return true;
  }
  if (std::filesystem::is_regular_file(st) && ::access(path.c_str(), W_OK) != 0) {
    return PermissionDeniedError(path + ": database is not writable: " + std::strerror(errno));
  }
  return false;
}

// Switches the store to WAL. On a new file that takes an exclusive lock, and
// when two processes create the store at once (the agent and procmond on a
// new host) each holds a shared lock for the statement: SQLite fails one of
// them at once with SQLITE_BUSY rather than waiting (which would deadlock),
// whatever the busy timeout. That one tries again, for up to the busy timeout.
Status SwitchToWal(Database& db, int64_t busy_timeout_ms) {
  const int64_t deadline = MonotonicMs() + busy_timeout_ms;
  for (int64_t delay_ms = 2;; delay_ms = std::min<int64_t>(delay_ms * 2, 100)) {
    Status s = db.Exec("PRAGMA journal_mode=WAL");
    if (s.code() != StatusCode::kUnavailable || MonotonicMs() >= deadline) return s;
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
  }
}

// After the header check: WAL, pragmas and migrations (read-write), or the
// schema check and query_only (read-only).
Status SetUpOpened(Database& db, DatabaseKind kind, const StoreOptions& options, int version) {
  if (options.mode == OpenMode::kReadWrite) {
    Status s = SwitchToWal(db, options.busy_timeout_ms);
    if (s.ok()) s = db.Exec("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON");
    if (s.ok() && options.cache_kib > 0)
      s = db.Exec("PRAGMA cache_size=-" + std::to_string(options.cache_kib));
    if (s.ok()) s = Migrate(db, kind);
    // Migrate may have had nothing to write: a write transaction shows that
    // SQLite opened the -wal for writing (see OpenStore).
    if (s.ok()) s = db.Exec("BEGIN IMMEDIATE; COMMIT");
    if (!s.ok()) return s.WithContext(std::string("opening ") + std::string(KindName(kind)));
    return Status::Ok();
  }
  if (version == 0) {
    return FailedPreconditionError(options.path + ": empty database, not a SentinelD " +
                                   std::string(KindName(kind)) +
                                   (kind == DatabaseKind::kFleet ? " (has `sentinelfleet serve` run yet?)"
                                                                 : " (has procmond run yet?)"));
  }
  RETURN_IF_ERROR(Migrate(db, kind));  // only checks: refuses an older schema read-only
  return db.Exec("PRAGMA query_only=1");
}

// One attempt at opening the store. `transient` is set when the file was
// opened but SQLite could not open or write what lies beside it.
Result<std::unique_ptr<Database>> OpenStoreOnce(DatabaseKind kind, const StoreOptions& options,
                                                bool* transient) {
  ASSIGN_OR_RETURN(std::unique_ptr<Database> db,
                   Database::Open(options.path, options.mode, options.busy_timeout_ms));
  auto checked = [&](Status s) {
    *transient = s.code() == StatusCode::kPermissionDenied || s.code() == StatusCode::kNotFound;
    return s;
  };
  if (Status s = CheckHeader(kind, *db, options.path); !s.ok()) return checked(s);
  // Identify the file before touching anything: a foreign or newer database is
  // refused without being changed (not even switched to WAL).
  auto version = InspectSchema(*db, kind);
  if (!version.ok()) return checked(version.status());
  if (Status s = SetUpOpened(*db, kind, options, *version); !s.ok()) return checked(s);
  return db;
}

// A -wal or -shm beside the store that this process may not write.
Status SideFilesWritable(const std::string& path) {
  for (const char* suffix : {"-wal", "-shm"}) {
    const std::string side = path + suffix;
    if (::access(side.c_str(), W_OK) == 0 || errno == ENOENT) continue;
    const int err = errno;
    std::string owner;
    struct stat st {};
    if (::stat(side.c_str(), &st) == 0) owner = ", owned by uid " + std::to_string(st.st_uid);
    return PermissionDeniedError(side + ": the database's side file is not writable (" + std::strerror(err) +
                                 owner + ")");
  }
  return Status::Ok();
}

// True when the store at `path` and its -wal hold no byte: no transaction
// was ever written to it, by this process or another.
bool NothingWritten(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && st.st_size > 0) return false;
  return ::stat((path + "-wal").c_str(), &st) != 0 || st.st_size == 0;
}

}  // namespace

Result<std::unique_ptr<Database>> OpenStore(DatabaseKind kind, const StoreOptions& options) {
  bool created = false;
  const bool rw = options.mode == OpenMode::kReadWrite;
  if (rw) {
    ASSIGN_OR_RETURN(created, PrepareReadWrite(options.path));
  }
  // A reader running as root (`sudo sentinelcli`, a test polling the store)
  // that opens it just as its -wal or -shm is made creates that file as root
  // and gives it to the store's owner a moment later (SQLite's fchown). A
  // writer opening the store in between cannot open or write it. The store
  // itself is ours and writable (PrepareReadWrite): such a failure is tried
  // again, with a new connection, for about 150 ms.
  int delay_ms = 10;
  for (int attempt = 1;; ++attempt) {
    bool transient = false;
    Status failed = rw ? SideFilesWritable(options.path) : Status::Ok();
    if (failed.ok()) {
      auto db = OpenStoreOnce(kind, options, &transient);
      if (db.ok()) return db;
      failed = db.status();
    } else {
      transient = true;
    }
    if (rw && transient && attempt < 5) {
      std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
      delay_ms *= 2;
      continue;
    }
    if (rw && transient) {
      // Name the side file when that is what stands in the way.
      if (Status side = SideFilesWritable(options.path); !side.ok()) failed = side;
    }
    // The file this call created goes, unless something was written to it:
    // another process may be creating the same store at once and using it.
    if (created && NothingWritten(options.path)) {
      for (const char* suffix : kSideSuffixes) ::unlink((options.path + suffix).c_str());
    }
    return failed;
  }
}

Status CheckStoreFiles(const std::string& events_path, const std::string& audit_path) {
  RETURN_IF_ERROR(CheckStoreFile(DatabaseKind::kEvents, events_path));
  return CheckStoreFile(DatabaseKind::kAudit, audit_path);
}

Status CheckStoreFile(DatabaseKind kind, const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::Ok();  // created when it is opened
    return ErrnoError(errno, path);
  }
  if (!S_ISREG(st.st_mode)) {
    return FailedPreconditionError(path + ": not a SentinelD " + std::string(KindName(kind)) +
                                   " (not a regular file)");
  }
  if (st.st_size == 0) return Status::Ok();  // an empty file is an empty database
  // No statement runs: the first one would leave -wal and -shm beside a WAL database.
  ASSIGN_OR_RETURN(std::unique_ptr<Database> db, Database::Open(path, OpenMode::kReadOnly, 1000));
  RETURN_IF_ERROR(CheckHeader(kind, *db, path));
  struct stat wal {};
  if (::stat((path + "-wal").c_str(), &wal) != 0 && errno == ENOENT) {
    RETURN_IF_ERROR(CheckQuiescentFile(kind, *db, path));
  }
  return Status::Ok();
}

Result<std::unique_ptr<EventStore>> EventStore::Open(const StoreOptions& options) {
  ASSIGN_OR_RETURN(auto db, OpenStore(DatabaseKind::kEvents, options));
  return std::unique_ptr<EventStore>(new EventStore(std::move(db)));
}

Status EventStore::LoadOpenInstances() {
  open_.clear();
  ASSIGN_OR_RETURN(
      Statement st,
      db_->Prepare(
          "SELECT i.instance_id, i.pid, i.start_time, i.name, i.exe_path, i.command_line, i.exe_hash,"
          "       s.ppid, s.cpu_percent, s.memory_bytes, s.status, s.user_id, s.user_name, s.effective_uid,"
          "       s.platform_data IS NOT NULL"
          " FROM process_instances i"
          " JOIN process_states s ON s.instance_id = i.instance_id"
          "  AND s.scan_id = (SELECT MAX(x.scan_id) FROM process_states x WHERE x.instance_id = "
          "i.instance_id)"
          " WHERE i.last_scan_id = 9223372036854775807"));
  while (true) {
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    OpenInstance inst;
    inst.instance_id = st.ColumnInt(0);
    std::optional<std::vector<std::string>> argv;
    if (!st.IsNull(5)) {
      auto j = nlohmann::json::parse(st.ColumnTextView(5), nullptr, /*allow_exceptions=*/false);
      if (j.is_array()) {
        std::vector<std::string> args;
        for (const auto& a : j) args.push_back(a.is_string() ? a.get<std::string>() : a.dump());
        argv = std::move(args);
      }
    }
    inst.image = DigestImage(st.ColumnText(3), st.ColumnOptionalText(4), argv, &scratch_);
    inst.ppid = st.ColumnOptionalInt(7);
    if (!st.IsNull(8)) inst.cpu_percent = st.ColumnDouble(8);
    inst.memory_bytes = st.ColumnOptionalInt(9);
    inst.status = st.ColumnOptionalText(10);
    inst.user_id = st.ColumnOptionalInt(11);
    inst.user_name = st.ColumnOptionalText(12);
    inst.effective_uid = st.ColumnOptionalInt(13);
    inst.pd_in_states = st.ColumnInt(14) != 0;
    inst.stdio_key = kStdioUnknown;
    open_[{st.ColumnInt(1), st.ColumnInt(2)}] = std::move(inst);
  }
  cache_loaded_ = true;
  return Status::Ok();
}

Result<int64_t> EventStore::WriteScan(const models::ScanRecord& scan) {
  if (db_->mode() != OpenMode::kReadWrite) return FailedPreconditionError("event store opened read-only");
  if (!cache_loaded_) RETURN_IF_ERROR(LoadOpenInstances());
  Result<int64_t> r = WriteScanUnchecked(scan);
  // open_ is updated in place as the scan is written: after any failure (the
  // transaction rolled back) it may no longer match the file.
  if (!r.ok()) cache_loaded_ = false;
  return r;
}

namespace {

Status BindOptionalBool(Statement& st, int i, std::optional<bool> v) {
  if (!v) return st.BindNull(i);
  return st.BindInt(i, *v ? 1 : 0);
}

Status BindArgv(Statement& st, int json_col, int text_col,
                const std::optional<std::vector<std::string>>& argv,
                const std::shared_ptr<const models::EncodedArgv>& encoded) {
  if (encoded) {
    RETURN_IF_ERROR(st.BindText(json_col, encoded->json));
    return st.BindText(text_col, encoded->text);
  }
  if (!argv) {
    RETURN_IF_ERROR(st.BindNull(json_col));
    return st.BindNull(text_col);
  }
  RETURN_IF_ERROR(st.BindText(json_col, models::EncodeCommandLine(*argv)));
  return st.BindText(text_col, models::JoinCommandLine(*argv));
}

// Columns 1-11 of a row whose parameters start after `b`: what every event has.
Status BindEventBase(Statement& ins, int b, const models::ProcessEvent& e) {
  RETURN_IF_ERROR(ins.BindInt(b + 1, e.event_time_ms));
  RETURN_IF_ERROR(ins.BindText(b + 2, e.event_type));
  RETURN_IF_ERROR(ins.BindInt(b + 3, e.pid));
  RETURN_IF_ERROR(ins.BindOptionalInt(b + 4, e.ppid));
  RETURN_IF_ERROR(ins.BindOptionalText(b + 5, e.name));
  RETURN_IF_ERROR(ins.BindOptionalText(b + 6, e.exe_path));
  RETURN_IF_ERROR(BindArgv(ins, b + 7, b + 22, e.command_line, e.command_encoded));
  RETURN_IF_ERROR(ins.BindOptionalInt(b + 8, e.user_id));
  RETURN_IF_ERROR(ins.BindOptionalText(b + 9, e.user_name));
  RETURN_IF_ERROR(ins.BindOptionalInt(b + 10, e.exit_code));
  return ins.BindOptionalText(b + 11, e.exe_hash);
}

// Columns 12-30: the exec context (column 22, command_text, goes with argv).
Status BindEventContext(Statement& ins, int b, const models::ProcessEvent& e) {
  RETURN_IF_ERROR(ins.BindOptionalInt(b + 12, e.start_time_ms));
  RETURN_IF_ERROR(ins.BindOptionalText(b + 13, e.cwd));
  RETURN_IF_ERROR(ins.BindOptionalInt(b + 14, e.login_uid));
  RETURN_IF_ERROR(ins.BindOptionalText(b + 15, e.tty));
  RETURN_IF_ERROR(ins.BindOptionalInt(b + 16, e.effective_uid));
  RETURN_IF_ERROR(ins.BindOptionalInt(b + 17, e.effective_gid));
  RETURN_IF_ERROR(BindOptionalBool(ins, b + 18, e.cred_change));
  if (e.env) {
    RETURN_IF_ERROR(ins.BindText(b + 19, models::EncodeEnvironment(*e.env)));
  } else {
    RETURN_IF_ERROR(ins.BindNull(b + 19));
  }
  RETURN_IF_ERROR(BindOptionalBool(ins, b + 20, e.env_truncated));
  RETURN_IF_ERROR(BindOptionalBool(ins, b + 21, e.args_truncated));
  RETURN_IF_ERROR(ins.BindOptionalText(b + 23, e.parent_exe_path));
  RETURN_IF_ERROR(ins.BindOptionalText(b + 24, e.parent_name));
  RETURN_IF_ERROR(BindArgv(ins, b + 25, b + 26, e.parent_command_line, e.parent_command_encoded));
  RETURN_IF_ERROR(ins.BindOptionalInt(b + 27, e.parent_start_time_ms));
  RETURN_IF_ERROR(ins.BindOptionalInt(b + 28, e.args_length));
  RETURN_IF_ERROR(BindOptionalBool(ins, b + 29, e.exe_host_mismatch));
  return ins.BindOptionalInt(b + 30, e.exe_memfd_seals);
}

constexpr int kEventColumnCount = 30;

// INSERT of `rows` rows in one statement.
std::string EventInsertSql(int rows) {
  std::string sql =
      "INSERT INTO process_events(event_time_ms, event_type, pid, ppid, name, exe_path,"
      " command_line, user_id, user_name, exit_code, exe_hash,"
      " start_time, cwd, login_uid, tty, effective_uid, effective_gid, cred_change, env,"
      " env_truncated, args_truncated, command_text, parent_exe_path, parent_name,"
      " parent_command_line, parent_command_text, parent_start_time, args_length, exe_host_mismatch,"
      " exe_memfd_seals) VALUES";
  for (int r = 0; r < rows; ++r) {
    sql += r == 0 ? "(" : ",(";
    for (int c = 0; c < kEventColumnCount; ++c) sql += c == 0 ? "?" : ",?";
    sql += ")";
  }
  return sql;
}

}  // namespace

Result<Statement*> EventStore::EventInsert(bool many) {
  std::optional<Statement>& slot = many ? insert_events_ : insert_event_;
  if (!slot) {
    ASSIGN_OR_RETURN(Statement st, db_->Prepare(EventInsertSql(many ? kEventRowsPerInsert : 1)));
    slot = std::move(st);
  }
  return &*slot;
}

Result<int64_t> EventStore::WriteEvents(const std::vector<models::ProcessEvent>& events) {
  if (events.empty()) return int64_t{0};
  ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(*db_));
  // Statements kept for the store's life: a busy writer (an exec storm writes
  // a batch every 200 ms) and an idle one (a few rows per batch) both skip
  // the parse and plan of a 30-column INSERT per batch. Rows go
  // kEventRowsPerInsert to a statement while there are that many: the
  // per-statement work (AUTOINCREMENT's sqlite_sequence update among it) is
  // then paid once per group, not once per row.
  size_t i = 0;
  while (i < events.size()) {
    const bool many = events.size() - i >= static_cast<size_t>(kEventRowsPerInsert);
    ASSIGN_OR_RETURN(Statement * ins, EventInsert(many));
    const int rows = many ? kEventRowsPerInsert : 1;
    Status s;
    for (int r = 0; r < rows && s.ok(); ++r) {
      s = BindEventBase(*ins, r * kEventColumnCount, events[i + r]);
      if (s.ok()) s = BindEventContext(*ins, r * kEventColumnCount, events[i + r]);
    }
    if (s.ok()) s = ins->Run();
    if (!s.ok()) {
      ins->Reset();  // no binding of this batch is left for the next one
      return s;
    }
    i += static_cast<size_t>(rows);
  }
  RETURN_IF_ERROR(tx.Commit());
  return static_cast<int64_t>(events.size());
}

Status EventStore::ReplaceWritableDirs(const std::vector<WritableDir>& dirs, int64_t found_at_ms) {
  if (db_->mode() != OpenMode::kReadWrite) return FailedPreconditionError("event store opened read-only");
  ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(*db_));
  RETURN_IF_ERROR(db_->Exec("DELETE FROM writable_dirs"));
  ASSIGN_OR_RETURN(Statement ins, db_->Prepare("INSERT OR REPLACE INTO writable_dirs(path, mode, owner_uid, "
                                               "found_at_ms) VALUES(?,?,?,?)"));
  for (const WritableDir& d : dirs) {
    RETURN_IF_ERROR(ins.BindText(1, d.path));
    RETURN_IF_ERROR(ins.BindInt(2, d.mode));
    RETURN_IF_ERROR(ins.BindInt(3, d.owner_uid));
    RETURN_IF_ERROR(ins.BindInt(4, found_at_ms));
    RETURN_IF_ERROR(ins.Run());
  }
  return tx.Commit();
}

// The statements and counters of one scan's write.
struct EventStore::ScanWrite {
  int64_t scan_id = 0;
  int64_t prev_scan_id = 0;
  Statement ins_inst, ins_state, close_inst;
  int64_t new_count = 0;
  int64_t exited = 0;

  // Marks an instance ended with the previous scan.
  Status Close(int64_t instance_id) {
    RETURN_IF_ERROR(close_inst.BindInt(1, prev_scan_id));
    RETURN_IF_ERROR(close_inst.BindInt(2, instance_id));
    return close_inst.Run();
  }
};

Result<int64_t> EventStore::InsertScanRow(const models::ScanRecord& scan) {
  ASSIGN_OR_RETURN(
      Statement ins_scan,
      db_->Prepare(
          "INSERT INTO scan_metadata(started_at_ms, completed_at_ms, duration_ms, status, process_count,"
          " errors, error_summary, hash_cache_hits, hash_cache_misses, hostname, collector_version)"
          " VALUES(?,?,?,'completed',?,?,?,?,?,?,?)"));
  RETURN_IF_ERROR(ins_scan.BindInt(1, scan.started_at_ms));
  RETURN_IF_ERROR(ins_scan.BindInt(2, scan.completed_at_ms));
  RETURN_IF_ERROR(ins_scan.BindInt(3, scan.completed_at_ms - scan.started_at_ms));
  RETURN_IF_ERROR(ins_scan.BindInt(4, static_cast<int64_t>(scan.processes.size())));
  RETURN_IF_ERROR(ins_scan.BindInt(5, scan.errors));
  RETURN_IF_ERROR(ins_scan.BindText(6, scan.error_summary));
  RETURN_IF_ERROR(ins_scan.BindInt(7, scan.hash_cache_hits));
  RETURN_IF_ERROR(ins_scan.BindInt(8, scan.hash_cache_misses));
  RETURN_IF_ERROR(ins_scan.BindText(9, scan.hostname));
  RETURN_IF_ERROR(ins_scan.BindText(10, scan.collector_version));
  RETURN_IF_ERROR(ins_scan.Run());
  return db_->LastInsertRowId();
}

Status EventStore::InsertInstance(ScanWrite& w, const models::ProcessRecord& p, OpenInstance& inst,
                                  const ImageDigest& image) {
  Statement& ins = w.ins_inst;
  RETURN_IF_ERROR(ins.BindInt(1, p.pid));
  RETURN_IF_ERROR(ins.BindInt(2, p.start_time_ms));
  RETURN_IF_ERROR(ins.BindText(3, p.name));
  RETURN_IF_ERROR(ins.BindOptionalText(4, p.exe_path));
  std::optional<std::string> cmd;
  if (p.command_line) cmd = models::EncodeCommandLine(*p.command_line);
  RETURN_IF_ERROR(ins.BindOptionalText(5, cmd));
  RETURN_IF_ERROR(ins.BindOptionalText(6, p.exe_hash));
  std::optional<std::string> algorithm;
  if (p.exe_hash) algorithm = "sha256";
  RETURN_IF_ERROR(ins.BindOptionalText(7, algorithm));
  RETURN_IF_ERROR(ins.BindText(8, p.platform_data));
  RETURN_IF_ERROR(ins.BindInt(9, w.scan_id));
  std::optional<std::string> text;
  if (p.command_line) text = models::JoinCommandLine(*p.command_line);
  RETURN_IF_ERROR(ins.BindOptionalText(10, text));
  RETURN_IF_ERROR(ins.Run());
  inst = OpenInstance{};
  inst.instance_id = db_->LastInsertRowId();
  inst.image = image;
  inst.stdio_key = p.stdio_key;
  ++w.new_count;
  return Status::Ok();
}

Status EventStore::InsertState(ScanWrite& w, const models::ProcessRecord& p, OpenInstance& inst) {
  Statement& ins = w.ins_state;
  RETURN_IF_ERROR(ins.BindInt(1, inst.instance_id));
  RETURN_IF_ERROR(ins.BindInt(2, w.scan_id));
  RETURN_IF_ERROR(ins.BindOptionalInt(3, p.ppid));
  RETURN_IF_ERROR(ins.BindOptionalDouble(4, p.cpu_percent));
  RETURN_IF_ERROR(ins.BindOptionalInt(5, p.memory_bytes));
  RETURN_IF_ERROR(ins.BindOptionalText(6, p.status));
  RETURN_IF_ERROR(ins.BindOptionalInt(7, p.user_id));
  RETURN_IF_ERROR(ins.BindOptionalText(8, p.user_name));
  RETURN_IF_ERROR(ins.BindOptionalInt(9, p.effective_uid));
  if (inst.pd_in_states) {
    RETURN_IF_ERROR(ins.BindText(10, p.platform_data));
  } else {
    RETURN_IF_ERROR(ins.BindNull(10));
  }
  RETURN_IF_ERROR(ins.Run());
  inst.ppid = p.ppid;
  inst.cpu_percent = p.cpu_percent;
  inst.memory_bytes = p.memory_bytes;
  inst.status = p.status;
  inst.user_id = p.user_id;
  inst.user_name = p.user_name;
  inst.effective_uid = p.effective_uid;
  return Status::Ok();
}

// The fds 0-2 of a shell or interpreter changed since they were written
// (ProcessRecord::stdio_key): a state row with the new platform_data is due.
// After a restart the key written is unknown: a watched process gets one
// such row, an unwatched one none.
bool EventStore::StdioMoved(const models::ProcessRecord& p, OpenInstance& inst) {
  if (inst.stdio_key == p.stdio_key) return false;
  const bool unwatched_after_load = inst.stdio_key == kStdioUnknown && p.stdio_key == 0;
  inst.stdio_key = p.stdio_key;
  if (unwatched_after_load) return false;
  inst.pd_in_states = true;
  return true;
}

Status EventStore::WriteProcess(ScanWrite& w, const models::ProcessRecord& p) {
  auto [it, inserted] = open_.try_emplace(Key{p.pid, p.start_time_ms});
  OpenInstance& inst = it->second;
  if (!inserted && inst.seen_scan == w.scan_id)
    return Status::Ok();  // a duplicate pid in one scan: keep the first
  const ImageDigest image = DigestImage(p.name, p.exe_path, p.command_line, &scratch_);
  const bool same_image = !inserted && inst.image == image;
  bool state_changed = true;
  if (same_image) {
    state_changed = inst.ppid != p.ppid || inst.cpu_percent != p.cpu_percent ||
                    inst.memory_bytes != p.memory_bytes || inst.status != p.status ||
                    inst.user_id != p.user_id || inst.effective_uid != p.effective_uid ||
                    inst.user_name != p.user_name;
    state_changed = StdioMoved(p, inst) || state_changed;
  } else {
    // Same pid and start time, new image: it called execve.
    if (!inserted) RETURN_IF_ERROR(w.Close(inst.instance_id));
    RETURN_IF_ERROR(InsertInstance(w, p, inst, image));
  }
  if (state_changed) RETURN_IF_ERROR(InsertState(w, p, inst));
  inst.seen_scan = w.scan_id;
  return Status::Ok();
}

Status EventStore::CloseExited(ScanWrite& w) {
  // Whatever this scan did not see has exited.
  for (auto it = open_.begin(); it != open_.end();) {
    if (it->second.seen_scan == w.scan_id) {
      ++it;
      continue;
    }
    RETURN_IF_ERROR(w.Close(it->second.instance_id));
    ++w.exited;
    it = open_.erase(it);
  }
  // A spike (a fork storm) must not pin its bucket array for good.
  if (open_.bucket_count() > 4 * (open_.size() + 1024)) open_.rehash(0);
  return Status::Ok();
}

Result<int64_t> EventStore::WriteScanUnchecked(const models::ScanRecord& scan) {
  ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(*db_));
  ScanWrite w;
  ASSIGN_OR_RETURN(auto prev,
                   db_->QueryInt("SELECT MAX(scan_id) FROM scan_metadata WHERE status='completed'"));
  w.prev_scan_id = prev.value_or(0);
  ASSIGN_OR_RETURN(w.scan_id, InsertScanRow(scan));
  ASSIGN_OR_RETURN(w.ins_inst, db_->Prepare("INSERT INTO process_instances(pid, start_time, name, exe_path, "
                                            "command_line, exe_hash, hash_algorithm,"
                                            " platform_data, first_scan_id, last_scan_id, command_text)"
                                            " VALUES(?,?,?,?,?,?,?,?,?,9223372036854775807,?)"));
  ASSIGN_OR_RETURN(
      w.ins_state,
      db_->Prepare(
          "INSERT INTO process_states(instance_id, scan_id, ppid, cpu_percent, memory_bytes, status, user_id,"
          " user_name, effective_uid, platform_data) VALUES(?,?,?,?,?,?,?,?,?,?)"));
  ASSIGN_OR_RETURN(w.close_inst,
                   db_->Prepare("UPDATE process_instances SET last_scan_id=? WHERE instance_id=?"));

  if (open_.bucket_count() < scan.processes.size())
    open_.reserve(scan.processes.size() + scan.processes.size() / 4);
  for (const models::ProcessRecord& p : scan.processes) RETURN_IF_ERROR(WriteProcess(w, p));
  RETURN_IF_ERROR(CloseExited(w));

  ASSIGN_OR_RETURN(
      Statement upd,
      db_->Prepare("UPDATE scan_metadata SET new_processes=?, exited_processes=? WHERE scan_id=?"));
  RETURN_IF_ERROR(upd.BindInt(1, w.new_count));
  RETURN_IF_ERROR(upd.BindInt(2, w.exited));
  RETURN_IF_ERROR(upd.BindInt(3, w.scan_id));
  RETURN_IF_ERROR(upd.Run());
  RETURN_IF_ERROR(tx.Commit());
  return w.scan_id;
}

Result<int64_t> DeleteInChunks(Database& db, const std::string& sql, int64_t bound, int64_t chunk_rows) {
  if (chunk_rows < 1) return InvalidArgumentError("retention chunk must be >= 1 row");
  int64_t deleted = 0;
  while (true) {
    ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db));
    ASSIGN_OR_RETURN(Statement st, db.Prepare(sql));
    RETURN_IF_ERROR(st.BindInt(1, bound));
    RETURN_IF_ERROR(st.BindInt(2, chunk_rows));
    RETURN_IF_ERROR(st.Run());
    const int64_t changed = db.Changes();
    RETURN_IF_ERROR(tx.Commit());
    deleted += changed;
    if (changed < chunk_rows) return deleted;
  }
}

Result<RetentionResult> EventStore::ApplyRetention(int64_t now_ms, int64_t retention_days,
                                                   int64_t chunk_rows) {
  if (retention_days < 1) return InvalidArgumentError("retention must be >= 1 day");
  if (chunk_rows < 1) return InvalidArgumentError("retention chunk must be >= 1 row");
  const int64_t cutoff = now_ms - retention_days * 86'400'000;
  RetentionResult r;
  auto purge = [&](const std::string& sql, int64_t bound, int64_t* counter) -> Status {
    ASSIGN_OR_RETURN(int64_t n, DeleteInChunks(*db_, sql, bound, chunk_rows));
    *counter += n;
    return Status::Ok();
  };
  // Old scans go, but never the latest completed one: after a long
  // shutdown `processes` still shows the last state known.
  RETURN_IF_ERROR(purge(
      "DELETE FROM scan_metadata WHERE scan_id IN (SELECT scan_id FROM scan_metadata WHERE started_at_ms < ?1"
      " AND scan_id < (SELECT coalesce(MAX(scan_id), 0) FROM scan_metadata WHERE status = 'completed')"
      " ORDER BY scan_id LIMIT ?2)",
      cutoff, &r.scans_deleted));
  ASSIGN_OR_RETURN(auto min_scan, db_->QueryInt("SELECT MIN(scan_id) FROM scan_metadata"));
  const int64_t keep_from = min_scan.value_or(INT64_MAX);
  // Instances that ended before the oldest remaining scan: their states, then them.
  RETURN_IF_ERROR(
      purge("DELETE FROM process_states WHERE (instance_id, scan_id) IN"
            " (SELECT st.instance_id, st.scan_id FROM process_instances i"
            "  JOIN process_states st ON st.instance_id = i.instance_id WHERE i.last_scan_id < ?1 LIMIT ?2)",
            keep_from, &r.states_deleted));
  RETURN_IF_ERROR(
      purge("DELETE FROM process_instances WHERE instance_id IN"
            " (SELECT instance_id FROM process_instances WHERE last_scan_id < ?1 LIMIT ?2)",
            keep_from, &r.instances_deleted));
  // Older states of surviving instances, except the one still in force at keep_from.
  RETURN_IF_ERROR(
      purge("DELETE FROM process_states WHERE (instance_id, scan_id) IN"
            " (SELECT s.instance_id, s.scan_id FROM process_states s WHERE s.scan_id < ?1"
            "  AND s.scan_id < (SELECT MAX(x.scan_id) FROM process_states x"
            "                   WHERE x.instance_id = s.instance_id AND x.scan_id <= ?1) LIMIT ?2)",
            keep_from, &r.states_deleted));
  RETURN_IF_ERROR(
      purge("DELETE FROM process_events WHERE id IN"
            " (SELECT id FROM process_events WHERE event_time_ms < ?1 ORDER BY id LIMIT ?2)",
            cutoff, &r.events_deleted));
  return r;
}

Result<MaintenanceResult> EventStore::Maintain() {
  MaintenanceResult m;
  // Lets SQLite refresh the statistics its planner uses (cheap when nothing changed).
  RETURN_IF_ERROR(db_->Exec("PRAGMA optimize"));
  // PASSIVE never waits for readers or writers; it copies what it can.
  ASSIGN_OR_RETURN(Statement st, db_->Prepare("PRAGMA wal_checkpoint(PASSIVE)"));
  ASSIGN_OR_RETURN(bool row, st.Step());
  if (row) {
    m.checkpoint_busy = st.ColumnInt(0) != 0;
    m.wal_frames = st.ColumnInt(1);
    m.checkpointed_frames = st.ColumnInt(2);
  }
  return m;
}

Status EventStore::SetMetadata(const std::string& key, const std::string& value) {
  ASSIGN_OR_RETURN(
      Statement st,
      db_->Prepare(
          "INSERT INTO system_metadata(key,value,updated_at_ms) VALUES(?,?,?)"
          " ON CONFLICT(key) DO UPDATE SET value=excluded.value, updated_at_ms=excluded.updated_at_ms"));
  RETURN_IF_ERROR(st.BindText(1, key));
  RETURN_IF_ERROR(st.BindText(2, value));
  RETURN_IF_ERROR(st.BindInt(3, NowMs()));
  return st.Run();
}

}  // namespace sentinel::storage

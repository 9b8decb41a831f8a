#include "statestore/sqlite/sqlite_store.hpp"

#include <condition_variable>
#include <ctime>
#include <deque>
#include <mutex>
#include <span>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <nlohmann/json.hpp>

#include "statestore/sqlite/connection.hpp"

namespace spawn::statestore::sqlite {

namespace {

// Migration i (0-based) takes the schema from version i to version i + 1. Never edit a released
// entry: files in the field have run it; append a new one instead.
constexpr const char* kMigrations[] = {
    // Version 1. `snapshots` holds each actor's current revision, `historical_snapshots` every
    // revision it replaced (PROTOCOL.md §6). Timestamps are UTC ISO 8601 text.
    R"sql(
      CREATE TABLE snapshots (
        system      TEXT    NOT NULL,
        actor       TEXT    NOT NULL,
        status      TEXT    NOT NULL,
        node        TEXT    NOT NULL,
        revision    INTEGER NOT NULL,
        tags        TEXT    NOT NULL,
        data_type   TEXT    NOT NULL,
        data        BLOB,
        has_state   INTEGER NOT NULL,
        inserted_at TEXT    NOT NULL,
        updated_at  TEXT    NOT NULL,
        PRIMARY KEY (system, actor)
      );
      CREATE TABLE historical_snapshots (
        system      TEXT    NOT NULL,
        actor       TEXT    NOT NULL,
        revision    INTEGER NOT NULL,
        status      TEXT    NOT NULL,
        node        TEXT    NOT NULL,
        tags        TEXT    NOT NULL,
        data_type   TEXT    NOT NULL,
        data        BLOB,
        has_state   INTEGER NOT NULL,
        inserted_at TEXT    NOT NULL,
        updated_at  TEXT    NOT NULL,
        valid_from  TEXT    NOT NULL,
        valid_to    TEXT    NOT NULL,
        PRIMARY KEY (system, actor, revision)
      );
    )sql",
};

static_assert(std::size(kMigrations) == SqliteStore::kSchemaVersion,
              "every schema version needs its migration");

constexpr std::string_view kSelectRevision =
    "SELECT revision FROM snapshots WHERE system = ?1 AND actor = ?2";

constexpr std::string_view kArchive = R"sql(
  INSERT INTO historical_snapshots (system, actor, revision, status, node, tags, data_type, data,
                                    has_state, inserted_at, updated_at, valid_from, valid_to)
  SELECT system, actor, revision, status, node, tags, data_type, data,
         has_state, inserted_at, updated_at, updated_at, ?3
  FROM snapshots WHERE system = ?1 AND actor = ?2
)sql";

constexpr std::string_view kUpsert = R"sql(
  INSERT INTO snapshots (system, actor, status, node, revision, tags, data_type, data, has_state,
                         inserted_at, updated_at)
  VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)
  ON CONFLICT (system, actor) DO UPDATE SET
    status = excluded.status, node = excluded.node, revision = excluded.revision,
    tags = excluded.tags, data_type = excluded.data_type, data = excluded.data,
    has_state = excluded.has_state, updated_at = excluded.updated_at
)sql";

constexpr std::string_view kLoad = R"sql(
  SELECT revision, status, node, tags, data_type, data, has_state
  FROM snapshots WHERE system = ?1 AND actor = ?2
)sql";

// One statement, so the current and historical tables are read in one consistent snapshot even
// while the writer moves this revision from one to the other.
constexpr std::string_view kLoadRevision = R"sql(
  SELECT revision, status, node, tags, data_type, data, has_state
  FROM snapshots WHERE system = ?1 AND actor = ?2 AND revision = ?3
  UNION ALL
  SELECT revision, status, node, tags, data_type, data, has_state
  FROM historical_snapshots WHERE system = ?1 AND actor = ?2 AND revision = ?3
  LIMIT 1
)sql";

std::string actor_context(std::string_view action, const ActorKey& key) {
  return std::string(action) + " state of actor '" + key.system + "/" + key.name + "'";
}

std::string_view status_text(ActorStatus status) {
  switch (status) {
    case ActorStatus::kActivated:
      return "ACTIVATED";
    case ActorStatus::kDeactivated:
      return "DEACTIVATED";
    case ActorStatus::kUnknown:
      break;
  }
  return "UNKNOWN";
}

ActorStatus status_from_text(std::string_view text) {
  if (text == "ACTIVATED") {
    return ActorStatus::kActivated;
  }
  if (text == "DEACTIVATED") {
    return ActorStatus::kDeactivated;
  }
  return ActorStatus::kUnknown;
}

Result<std::string> tags_to_json(const std::map<std::string, std::string>& tags) {
  try {
    return nlohmann::json(tags).dump();
  } catch (const nlohmann::json::exception& e) {
    return fail(ErrorCode::kInvalidArgument, std::string("tags are not valid UTF-8: ") + e.what());
  }
}

Result<std::map<std::string, std::string>> tags_from_json(std::string_view text) {
  const nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return fail(ErrorCode::kDataLoss, "tags column is not a JSON object");
  }
  std::map<std::string, std::string> tags;
  for (const auto& [name, value] : json.items()) {
    if (!value.is_string()) {
      return fail(ErrorCode::kDataLoss, "tag '" + name + "' is not a string");
    }
    tags.emplace(name, value.get<std::string>());
  }
  return tags;
}

// UTC, ISO 8601 with milliseconds: sorts as text and reads in any SQL console.
std::string now_utc() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[40];
  const std::size_t length = std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &utc);
  std::snprintf(text + length, sizeof(text) - length, ".%03dZ", static_cast<int>(millis));
  return text;
}

// Runs a statement that returns no rows and makes it ready to run again.
Result<void> run(Statement& statement) {
  Result<bool> stepped = statement.step();
  statement.reset();
  if (!stepped) {
    return std::move(stepped).error();
  }
  return ok();
}

// Brings the file's schema to kSchemaVersion, in one transaction so that two processes opening
// the same new file do not both migrate it.
Result<void> migrate(Connection& db) {
  if (Result<void> begun = db.exec("BEGIN IMMEDIATE"); !begun) {
    return begun;
  }
  auto step = [&]() -> Result<void> {
    if (Result<void> created = db.exec("CREATE TABLE IF NOT EXISTS schema_version ("
                                       "version INTEGER NOT NULL, applied_at TEXT NOT NULL)");
        !created) {
      return created;
    }
    Result<std::optional<std::string>> current =
        db.query_text("SELECT coalesce(max(version), 0) FROM schema_version");
    if (!current) {
      return std::move(current).error();
    }
    const int version = current->has_value() ? std::atoi((*current)->c_str()) : 0;
    if (version > SqliteStore::kSchemaVersion) {
      return fail(ErrorCode::kConfig, "database schema version " + std::to_string(version)
                                          + " is newer than this build supports ("
                                          + std::to_string(SqliteStore::kSchemaVersion)
                                          + "); upgrade spawn-proxy");
    }
    for (int next = version + 1; next <= SqliteStore::kSchemaVersion; ++next) {
      if (Result<void> migrated = db.exec(kMigrations[next - 1]); !migrated) {
        return migrated.error().with_context("migrate to schema version " + std::to_string(next));
      }
      const std::string record = "INSERT INTO schema_version (version, applied_at) VALUES ("
                                 + std::to_string(next) + ", '" + now_utc() + "')";
      if (Result<void> recorded = db.exec(record.c_str()); !recorded) {
        return recorded;
      }
    }
    return ok();
  };
  if (Result<void> migrated = step(); !migrated) {
    (void)db.exec("ROLLBACK");
    return migrated;
  }
  return db.exec("COMMIT");
}

/// A suspended caller: its completion handler plus a tracked executor that keeps its execution
/// context from running out of work until the result is delivered. Made by make_completion().
template <class T>
class Completion {
public:
  Completion(asio::any_io_executor tracked_executor,
             asio::any_completion_handler<void(Result<T>)> handler)
      : executor_(std::move(tracked_executor)), handler_(std::move(handler)) {}

  /// Delivers `result` on the caller's executor. Called once, from a store thread: the handler
  /// resumes a coroutine that belongs to another thread, so it is posted, never invoked here.
  void complete(Result<T> result) {
    asio::any_io_executor executor = executor_;
    // `work` keeps the caller's context running until the handler has run.
    asio::post(executor,
               [handler = std::move(handler_), result = std::move(result),
                work = std::move(executor_)]() mutable { std::move(handler)(std::move(result)); });
  }

private:
  asio::any_io_executor executor_;
  asio::any_completion_handler<void(Result<T>)> handler_;
};

/// Wraps the completion handler of an awaiting coroutine; call it on the caller's thread.
template <class T, class Handler>
Completion<T> make_completion(Handler handler) {
  // A custom operation must count as work itself: without this, io_context::run() would return
  // while the coroutine still waits for the store.
  asio::any_io_executor tracked = asio::prefer(asio::get_associated_executor(handler),
                                               asio::execution::outstanding_work.tracked);
  return Completion<T>(std::move(tracked), std::move(handler));
}

struct WriteRequest {
  ActorKey key;
  Snapshot snapshot;
  std::string tags_json;
  std::int64_t expected_revision = 0;
  Completion<std::int64_t> completion;
};

// The revision a ReadRequest asks for when it wants the newest.
constexpr std::int64_t kNewest = 0;

struct ReadRequest {
  ActorKey key;
  /// kNewest, or the revision wanted.
  std::int64_t revision = kNewest;
  Completion<std::optional<Snapshot>> completion;
};

/// A mutex-and-condvar queue between the callers and one kind of store thread.
template <class Request>
class RequestQueue {
public:
  /// Adds a request and wakes one waiting thread.
  void push(Request request) {
    {
      const std::lock_guard lock(mutex_);
      items_.push_back(std::move(request));
    }
    ready_.notify_one();
  }

  /// Waits for requests and takes up to `max` of them, oldest first. Returns none only once the
  /// queue is closed and empty.
  std::vector<Request> pop(std::size_t max) {
    std::unique_lock lock(mutex_);
    ready_.wait(lock, [this] { return closed_ || !items_.empty(); });
    std::vector<Request> taken;
    const std::size_t count = std::min(max, items_.size());
    taken.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
      taken.push_back(std::move(items_.front()));
      items_.pop_front();
    }
    return taken;
  }

  /// Lets the threads finish what is queued and then return from pop() empty-handed.
  void close() {
    {
      const std::lock_guard lock(mutex_);
      closed_ = true;
    }
    ready_.notify_all();
  }

private:
  std::mutex mutex_;  // guards items_ and closed_
  std::condition_variable ready_;
  std::deque<Request> items_;
  bool closed_ = false;
};

// async_read() and async_write() queue a request and return the awaitable that completes with
// its result. They are plain functions, not coroutines, on purpose: with GCC 12, an initiation
// lambda with init-captures written inside a coroutine's co_await expression had its captured
// strings freed twice (found with valgrind). Keep the lambdas out of coroutine bodies.

Task<Result<std::optional<Snapshot>>> async_read(RequestQueue<ReadRequest>& queue, ActorKey key,
                                                 std::int64_t revision) {
  return asio::async_initiate<decltype(asio::use_awaitable), void(Result<std::optional<Snapshot>>)>(
      [&queue](auto handler, ActorKey request_key, std::int64_t request_revision) {
        queue.push(ReadRequest{
            .key = std::move(request_key),
            .revision = request_revision,
            .completion = make_completion<std::optional<Snapshot>>(std::move(handler))});
      },
      asio::use_awaitable, std::move(key), revision);
}

Task<Result<std::int64_t>> async_write(RequestQueue<WriteRequest>& queue, ActorKey key,
                                       Snapshot snapshot, std::string tags_json,
                                       std::int64_t expected_revision) {
  return asio::async_initiate<decltype(asio::use_awaitable), void(Result<std::int64_t>)>(
      [&queue](auto handler, ActorKey request_key, Snapshot request_snapshot,
               std::string request_tags, std::int64_t request_expected) {
        queue.push(WriteRequest{.key = std::move(request_key),
                                .snapshot = std::move(request_snapshot),
                                .tags_json = std::move(request_tags),
                                .expected_revision = request_expected,
                                .completion = make_completion<std::int64_t>(std::move(handler))});
      },
      asio::use_awaitable, std::move(key), std::move(snapshot), std::move(tags_json),
      expected_revision);
}

/// The write connection and its statements; used only by the writer thread.
class Writer {
public:
  static Result<Writer> create(Connection db) {
    Writer writer(std::move(db));
    for (auto [statement, sql] :
         {std::pair{&writer.select_revision_, kSelectRevision},
          std::pair{&writer.archive_, kArchive}, std::pair{&writer.upsert_, kUpsert},
          std::pair{&writer.begin_, std::string_view("BEGIN IMMEDIATE")},
          std::pair{&writer.commit_, std::string_view("COMMIT")}}) {
      Result<Statement> prepared = writer.db_.prepare(sql);
      if (!prepared) {
        return std::move(prepared).error();
      }
      *statement = std::move(*prepared);
    }
    return writer;
  }

  /// Commits `batch` and completes every request in it.
  void write(std::span<WriteRequest> batch) {
    std::vector<Result<std::int64_t>> results;
    results.reserve(batch.size());
    Result<void> committed = transact(batch, results);
    if (!committed) {
      results.clear();
      if (batch.size() == 1) {
        results.emplace_back(committed.error().with_context(actor_context("save", batch[0].key)));
      } else {
        // One failing save must not fail the saves batched with it: retry each on its own.
        for (WriteRequest& request : batch) {
          std::vector<Result<std::int64_t>> single;
          Result<void> alone = transact(std::span(&request, 1), single);
          if (alone) {
            results.push_back(std::move(single.front()));
          } else {
            results.emplace_back(alone.error().with_context(actor_context("save", request.key)));
          }
        }
      }
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
      batch[i].completion.complete(std::move(results[i]));
    }
  }

private:
  /// What one save did inside a transaction.
  struct Applied {
    /// The stored revision differed from the expected one; nothing was written.
    bool conflict = false;
    /// The new revision, or on conflict the stored one.
    std::int64_t revision = 0;
  };

  explicit Writer(Connection db) : db_(std::move(db)) {}

  // Runs `requests` in one transaction, appending each one's outcome to `results`. Fails (and
  // rolls back) only on a SQLite error; a revision conflict is an outcome, not a failure.
  Result<void> transact(std::span<WriteRequest> requests,
                        std::vector<Result<std::int64_t>>& results) {
    if (Result<void> begun = run(begin_); !begun) {
      return begun;
    }
    const std::string now = now_utc();
    for (WriteRequest& request : requests) {
      Result<Applied> applied = apply(request, now);
      if (!applied) {
        (void)db_.exec("ROLLBACK");
        results.clear();
        return std::move(applied).error();
      }
      if (applied->conflict) {
        results.emplace_back(
            fail(ErrorCode::kConflict, actor_context("save", request.key)
                                           + ": revision conflict (expected "
                                           + std::to_string(request.expected_revision) + ", stored "
                                           + std::to_string(applied->revision) + ")"));
      } else {
        results.emplace_back(applied->revision);
      }
    }
    if (Result<void> committed = run(commit_); !committed) {
      (void)db_.exec("ROLLBACK");
      results.clear();
      return committed;
    }
    return ok();
  }

  // Compare-and-set of one save, inside the open transaction: it sees the writes of the saves
  // before it in the batch, so the first of two saves at the same revision wins.
  Result<Applied> apply(const WriteRequest& request, const std::string& now) {
    const ActorKey& key = request.key;
    select_revision_.bind_text(1, key.system);
    select_revision_.bind_text(2, key.name);
    Result<bool> found = select_revision_.step();
    const std::int64_t stored = found && *found ? select_revision_.column_int64(0) : 0;
    select_revision_.reset();
    if (!found) {
      return std::move(found).error();
    }
    if (stored != request.expected_revision) {
      return Applied{.conflict = true, .revision = stored};
    }
    if (stored > 0) {
      archive_.bind_text(1, key.system);
      archive_.bind_text(2, key.name);
      archive_.bind_text(3, now);
      if (Result<void> archived = run(archive_); !archived) {
        return archived.error();
      }
    }
    const Snapshot& snapshot = request.snapshot;
    upsert_.bind_text(1, key.system);
    upsert_.bind_text(2, key.name);
    upsert_.bind_text(3, status_text(snapshot.status));
    upsert_.bind_text(4, snapshot.node);
    upsert_.bind_int64(5, stored + 1);
    upsert_.bind_text(6, request.tags_json);
    if (snapshot.has_state) {
      upsert_.bind_text(7, snapshot.type_url);
      upsert_.bind_blob(8, snapshot.data);
    } else {
      upsert_.bind_text(7, "");
      upsert_.bind_null(8);
    }
    upsert_.bind_int64(9, snapshot.has_state ? 1 : 0);
    upsert_.bind_text(10, now);
    if (Result<void> upserted = run(upsert_); !upserted) {
      return upserted.error();
    }
    return Applied{.conflict = false, .revision = stored + 1};
  }

  // db_ first: statements are finalized before their connection closes.
  Connection db_;
  Statement select_revision_;
  Statement archive_;
  Statement upsert_;
  Statement begin_;
  Statement commit_;
};

/// A read connection and its statements; used only by its reader thread.
class Reader {
public:
  static Result<Reader> create(Connection db) {
    Reader reader(std::move(db));
    Result<Statement> load = reader.db_.prepare(kLoad);
    if (!load) {
      return std::move(load).error();
    }
    Result<Statement> load_revision = reader.db_.prepare(kLoadRevision);
    if (!load_revision) {
      return std::move(load_revision).error();
    }
    reader.load_ = std::move(*load);
    reader.load_revision_ = std::move(*load_revision);
    return reader;
  }

  /// Reads the snapshot `request` asks for.
  Result<std::optional<Snapshot>> read(const ReadRequest& request) {
    Statement& statement = request.revision == kNewest ? load_ : load_revision_;
    statement.bind_text(1, request.key.system);
    statement.bind_text(2, request.key.name);
    if (request.revision != kNewest) {
      statement.bind_int64(3, request.revision);
    }
    Result<std::optional<Snapshot>> snapshot = read_row(statement);
    statement.reset();
    if (!snapshot) {
      return snapshot.error().with_context(actor_context("load", request.key));
    }
    return snapshot;
  }

private:
  explicit Reader(Connection db) : db_(std::move(db)) {}

  static Result<std::optional<Snapshot>> read_row(Statement& statement) {
    Result<bool> found = statement.step();
    if (!found) {
      return std::move(found).error();
    }
    if (!*found) {
      return std::optional<Snapshot>();
    }
    Snapshot snapshot;
    snapshot.revision = statement.column_int64(0);
    snapshot.status = status_from_text(statement.column_text(1));
    snapshot.node = statement.column_text(2);
    Result<std::map<std::string, std::string>> tags = tags_from_json(statement.column_text(3));
    if (!tags) {
      return std::move(tags).error();
    }
    snapshot.tags = std::move(*tags);
    snapshot.has_state = statement.column_int64(6) != 0;
    if (snapshot.has_state) {
      snapshot.type_url = statement.column_text(4);
      snapshot.data = statement.column_blob(5);
    }
    return std::optional<Snapshot>(std::move(snapshot));
  }

  // db_ first: statements are finalized before their connection closes.
  Connection db_;
  Statement load_;
  Statement load_revision_;
};

}  // namespace

class SqliteStore::Impl {
public:
  Impl(std::filesystem::path file, Options options, Writer writer, std::vector<Reader> readers)
      : file_(std::move(file)),
        options_(std::move(options)),
        writer_(std::move(writer)),
        readers_(std::move(readers)) {}

  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  // Drains both queues, then joins the threads; members then close the readers' connections
  // before the writer's, so the last close (the writer's) checkpoints the WAL into the file.
  ~Impl() {
    writes_.close();
    reads_.close();
    if (writer_thread_.joinable()) {
      writer_thread_.join();
    }
    for (std::thread& thread : reader_threads_) {
      thread.join();
    }
  }

  /// Starts the writer and reader threads. Throws std::system_error when a thread cannot start.
  void start() {
    writer_thread_ = std::thread([this] { run_writer(); });
    for (Reader& reader : readers_) {
      reader_threads_.emplace_back([this, &reader] { run_reader(reader); });
    }
  }

  const std::filesystem::path& file() const { return file_; }

  const Options& options() const { return options_; }

  RequestQueue<WriteRequest>& writes() { return writes_; }

  RequestQueue<ReadRequest>& reads() { return reads_; }

private:
  void run_writer() {
    const std::size_t max_batch =
        options_.group_commit ? std::max<std::size_t>(options_.max_batch, 1) : 1;
    for (;;) {
      std::vector<WriteRequest> batch = writes_.pop(max_batch);
      if (batch.empty()) {
        return;
      }
      writer_.write(batch);
    }
  }

  void run_reader(Reader& reader) {
    for (;;) {
      std::vector<ReadRequest> requests = reads_.pop(1);
      if (requests.empty()) {
        return;
      }
      ReadRequest& request = requests.front();
      request.completion.complete(reader.read(request));
    }
  }

  std::filesystem::path file_;
  Options options_;
  Writer writer_;
  std::vector<Reader> readers_;
  RequestQueue<WriteRequest> writes_;
  RequestQueue<ReadRequest> reads_;
  std::thread writer_thread_;
  std::vector<std::thread> reader_threads_;
};

Result<std::unique_ptr<SqliteStore>> SqliteStore::open(std::filesystem::path file,
                                                       Options options) {
  const std::string context = "open sqlite statestore '" + file.string() + "'";
  const int busy_ms = static_cast<int>(options.busy_timeout.count());
  if (file.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(file.parent_path(), ec);
    if (ec) {
      return fail(
          ErrorCode::kUnavailable,
          context + ": create directory '" + file.parent_path().string() + "': " + ec.message());
    }
  }
  Result<Connection> db = Connection::open(file, /*create=*/true, busy_ms);
  if (!db) {
    return db.error().with_context(context);
  }
  Result<std::optional<std::string>> mode = db->query_text("PRAGMA journal_mode = WAL");
  if (!mode) {
    return mode.error().with_context(context);
  }
  if (*mode != "wal") {
    return fail(ErrorCode::kUnavailable,
                context + ": cannot use WAL journal mode (got '" + mode->value_or("") + "')");
  }
  // In WAL mode, NORMAL syncs only at checkpoints and may lose the last commits on power loss;
  // FULL syncs the WAL at every commit, so a completed save is on disk. Group commit pays one
  // sync per batch.
  if (Result<void> synced = db->exec("PRAGMA synchronous = FULL"); !synced) {
    return synced.error().with_context(context);
  }
  if (Result<void> migrated = migrate(*db); !migrated) {
    return migrated.error().with_context(context);
  }
  Result<Writer> writer = Writer::create(std::move(*db));
  if (!writer) {
    return writer.error().with_context(context);
  }
  std::vector<Reader> readers;
  for (std::size_t i = 0; i < std::max<std::size_t>(options.reader_threads, 1); ++i) {
    Result<Connection> read_db = Connection::open(file, /*create=*/false, busy_ms);
    if (!read_db) {
      return read_db.error().with_context(context);
    }
    if (Result<void> read_only = read_db->exec("PRAGMA query_only = ON"); !read_only) {
      return read_only.error().with_context(context);
    }
    Result<Reader> reader = Reader::create(std::move(*read_db));
    if (!reader) {
      return reader.error().with_context(context);
    }
    readers.push_back(std::move(*reader));
  }
  auto impl =
      std::make_unique<Impl>(file, std::move(options), std::move(*writer), std::move(readers));
  try {
    impl->start();
  } catch (const std::system_error& e) {
    return fail(ErrorCode::kInternal, context + ": start threads: " + e.what());
  }
  return std::unique_ptr<SqliteStore>(new SqliteStore(std::move(impl)));
}

SqliteStore::SqliteStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SqliteStore::~SqliteStore() = default;

const std::filesystem::path& SqliteStore::file() const {
  return impl_->file();
}

Task<Result<std::optional<Snapshot>>> SqliteStore::load(ActorKey key) {
  return async_read(impl_->reads(), std::move(key), kNewest);
}

Task<Result<std::optional<Snapshot>>> SqliteStore::load_revision(ActorKey key,
                                                                 std::int64_t revision) {
  if (revision <= 0) {
    co_return std::optional<Snapshot>();
  }
  co_return co_await async_read(impl_->reads(), std::move(key), revision);
}

Task<Result<std::int64_t>> SqliteStore::save(ActorKey key, Snapshot snapshot,
                                             std::int64_t expected_revision) {
  if (expected_revision < 0) {
    co_return fail(ErrorCode::kInvalidArgument, actor_context("save", key)
                                                    + ": negative expected revision "
                                                    + std::to_string(expected_revision));
  }
  // Serialized here, not on the writer thread, so bad tags fail only this save.
  Result<std::string> tags = tags_to_json(snapshot.tags);
  if (!tags) {
    co_return tags.error().with_context(actor_context("save", key));
  }
  if (snapshot.node.empty()) {
    snapshot.node = impl_->options().node;
  }
  co_return co_await async_write(impl_->writes(), std::move(key), std::move(snapshot),
                                 std::move(*tags), expected_revision);
}

}  // namespace spawn::statestore::sqlite

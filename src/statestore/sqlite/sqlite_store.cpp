#include "statestore/sqlite/sqlite_store.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <span>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "statestore/queued_store.hpp"
#include "statestore/snapshot_codec.hpp"
#include "statestore/sqlite/connection.hpp"
#include "statestore/store_requests.hpp"

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
    // Version 2. `scheduled_invocations` holds each delayed invocation (PROTOCOL.md §5.6) from
    // before the client is answered until the runtime removes it; `request` is the (encrypted)
    // serialized InvocationRequest. The index serves due_scheduled()'s range scan in its order.
    R"sql(
      CREATE TABLE scheduled_invocations (
        id          TEXT    NOT NULL PRIMARY KEY,
        due_ms      INTEGER NOT NULL,
        system      TEXT    NOT NULL,
        actor       TEXT    NOT NULL,
        request     BLOB    NOT NULL,
        inserted_at TEXT    NOT NULL
      );
      CREATE INDEX scheduled_invocations_due ON scheduled_invocations (due_ms, id);
    )sql",
    // Version 3. `snapshot_history` replaces `historical_snapshots`: an append-only log of every
    // revision as it was saved, the current one included, written once by the save that made it.
    // Rows are keyed by `id` (the rowid), so a save appends at the end of the table instead of
    // inserting into a per-actor place in an index (which dirtied about one page per save and
    // cost more than the rest of the save). `previous` is the id of the same actor's row before
    // it (NULL for its first), `snapshots.history_id` the id of its current revision, and
    // `snapshot_history_anchors` the ids of every 64th revision: a revision is found by starting
    // at the first anchor at or above it (else at the current revision) and following `previous`
    // (at most 63 steps). Any set of anchors finds every revision, so their spacing may change.
    // `saved_at` is when the revision was written (its `updated_at`); it stayed current until the
    // next revision's `saved_at`. `data` comes last so that walking the chain reads no blob.
    // Existing history is copied in actor and revision order (so each row's predecessor is the
    // row before it); where a revision is in both tables the current row, which loads used, wins.
    R"sql(
      CREATE TABLE snapshot_history (
        id        INTEGER PRIMARY KEY,
        system    TEXT    NOT NULL,
        actor     TEXT    NOT NULL,
        revision  INTEGER NOT NULL,
        previous  INTEGER,
        status    TEXT    NOT NULL,
        node      TEXT    NOT NULL,
        tags      TEXT    NOT NULL,
        data_type TEXT    NOT NULL,
        has_state INTEGER NOT NULL,
        saved_at  TEXT    NOT NULL,
        data      BLOB
      );
      CREATE TABLE snapshot_history_anchors (
        system   TEXT    NOT NULL,
        actor    TEXT    NOT NULL,
        revision INTEGER NOT NULL,
        id       INTEGER NOT NULL,
        PRIMARY KEY (system, actor, revision)
      ) WITHOUT ROWID;
      ALTER TABLE snapshots ADD COLUMN history_id INTEGER;
      INSERT INTO snapshot_history (system, actor, revision, status, node, tags, data_type,
                                    has_state, saved_at, data)
      SELECT system, actor, revision, status, node, tags, data_type, has_state, saved_at, data
      FROM (SELECT system, actor, revision, status, node, tags, data_type, has_state,
                   updated_at AS saved_at, data
            FROM snapshots
            UNION ALL
            SELECT system, actor, revision, status, node, tags, data_type, has_state,
                   updated_at AS saved_at, data
            FROM historical_snapshots AS h
            WHERE NOT EXISTS (SELECT 1 FROM snapshots AS s WHERE s.system = h.system
                              AND s.actor = h.actor AND s.revision = h.revision))
      ORDER BY system, actor, revision;
      UPDATE snapshot_history SET previous = id - 1
      WHERE EXISTS (SELECT 1 FROM snapshot_history AS p WHERE p.id = snapshot_history.id - 1
                    AND p.system = snapshot_history.system AND p.actor = snapshot_history.actor);
      INSERT INTO snapshot_history_anchors (system, actor, revision, id)
      SELECT system, actor, revision, id FROM snapshot_history WHERE revision % 64 = 0;
      CREATE INDEX migrate_history ON snapshot_history (system, actor, revision);
      UPDATE snapshots SET history_id = (SELECT id FROM snapshot_history AS h
                                         WHERE h.system = snapshots.system
                                         AND h.actor = snapshots.actor
                                         AND h.revision = snapshots.revision);
      DROP INDEX migrate_history;
      DROP TABLE historical_snapshots;
    )sql",
};

static_assert(std::size(kMigrations) == SqliteStore::kSchemaVersion,
              "every schema version needs its migration");

// How much of the file each reader maps (address space, not memory): 1 GiB.
constexpr const char* kReaderMmap = "PRAGMA mmap_size = 1073741824";

// The most loads a reader serves in one read transaction; its callers are resumed after the last.
constexpr std::size_t kMaxReadBatch = 64;

// A save appends its revision to `snapshot_history` and then writes `snapshots`, all statements
// binding the same parameters (?1 to ?10, plus the new history row's id as ?11 for the second).
// The append is the compare-and-set: a first save appends only while the actor has no snapshot
// row, a later one only while its row still has the expected revision (?10), taking that row's
// history id as the new row's `previous`. When the append added no row the save lost the race;
// only then is the stored revision read, for the error message.
constexpr std::string_view kSelectRevision =
    "SELECT revision FROM snapshots WHERE system = ?1 AND actor = ?2";

constexpr std::string_view kRecordFirst = R"sql(
  INSERT INTO snapshot_history (system, actor, revision, previous, status, node, tags, data_type,
                                has_state, saved_at, data)
  SELECT ?1, ?2, ?10 + 1, NULL, ?3, ?4, ?5, ?6, ?8, ?9, ?7
  WHERE NOT EXISTS (SELECT 1 FROM snapshots WHERE system = ?1 AND actor = ?2)
)sql";

constexpr std::string_view kRecord = R"sql(
  INSERT INTO snapshot_history (system, actor, revision, previous, status, node, tags, data_type,
                                has_state, saved_at, data)
  SELECT ?1, ?2, ?10 + 1, history_id, ?3, ?4, ?5, ?6, ?8, ?9, ?7
  FROM snapshots WHERE system = ?1 AND actor = ?2 AND revision = ?10
)sql";

constexpr std::string_view kInsert = R"sql(
  INSERT INTO snapshots (system, actor, status, node, revision, tags, data_type, data, has_state,
                         inserted_at, updated_at, history_id)
  VALUES (?1, ?2, ?3, ?4, ?10 + 1, ?5, ?6, ?7, ?8, ?9, ?9, ?11)
)sql";

constexpr std::string_view kUpdate = R"sql(
  UPDATE snapshots SET status = ?3, node = ?4, revision = ?10 + 1, tags = ?5, data_type = ?6,
                       data = ?7, has_state = ?8, updated_at = ?9, history_id = ?11
  WHERE system = ?1 AND actor = ?2 AND revision = ?10
  RETURNING rowid
)sql";

// The fast path of a later save, when the writer knows the actor's current history id (?11, see
// Writer::heads_): the append takes it as `previous` without reading `snapshots`, and the update
// is the compare-and-set, on the revision and that history id both (?12 the new row's id). The
// writer also remembers the snapshot row's rowid (learnt from the insert or an update's
// RETURNING): kUpdateRow finds the row by it (?13), one B-tree search instead of two (the primary
// key's index, then the table). The rowid is only a hint; the history id ?11 checks that the row
// is still the actor's, without comparing (and binding) the key: a history row belongs to one
// actor, ids are never reused while a snapshot row names them (only an append that no update
// took is taken back), and a snapshot row only ever names a row of its own actor. So a rowid that
// changed (VACUUM renumbers them) updates nothing and the save takes the slow path, like one
// whose row another process changed.
constexpr std::string_view kAppend = R"sql(
  INSERT INTO snapshot_history (system, actor, revision, previous, status, node, tags, data_type,
                                has_state, saved_at, data)
  VALUES (?1, ?2, ?10 + 1, ?11, ?3, ?4, ?5, ?6, ?8, ?9, ?7)
)sql";

constexpr std::string_view kUpdateHead = R"sql(
  UPDATE snapshots SET status = ?3, node = ?4, revision = ?10 + 1, tags = ?5, data_type = ?6,
                       data = ?7, has_state = ?8, updated_at = ?9, history_id = ?12
  WHERE system = ?1 AND actor = ?2 AND revision = ?10 AND history_id = ?11
  RETURNING rowid
)sql";

constexpr std::string_view kUpdateRow = R"sql(
  UPDATE snapshots SET status = ?3, node = ?4, revision = ?10 + 1, tags = ?5, data_type = ?6,
                       data = ?7, has_state = ?8, updated_at = ?9, history_id = ?12
  WHERE rowid = ?13 AND history_id = ?11 AND revision = ?10
)sql";

// Takes back a fast-path append whose update found the row changed by another process.
constexpr std::string_view kUnappend = "DELETE FROM snapshot_history WHERE id = ?1";

// Every kAnchorEvery-th revision gets an anchor (migration 3 placed them at the same spacing).
constexpr std::int64_t kAnchorEvery = 64;

constexpr std::string_view kAnchor = R"sql(
  INSERT INTO snapshot_history_anchors (system, actor, revision, id) VALUES (?1, ?2, ?3, ?4)
)sql";

constexpr std::string_view kLoad = R"sql(
  SELECT revision, status, node, tags, data_type, data, has_state
  FROM snapshots WHERE system = ?1 AND actor = ?2
)sql";

// Starts at the first anchor at or above the revision (else at the current revision) and follows
// `previous` down to it: at most kAnchorEvery rows, read by id. One statement, so it reads one
// consistent snapshot of the file even while the writer appends.
constexpr std::string_view kLoadRevision = R"sql(
  WITH RECURSIVE walk (id, revision, previous) AS (
    SELECT id, revision, previous FROM snapshot_history
    WHERE id = coalesce((SELECT id FROM snapshot_history_anchors
                         WHERE system = ?1 AND actor = ?2 AND revision >= ?3
                         ORDER BY revision LIMIT 1),
                        (SELECT history_id FROM snapshots WHERE system = ?1 AND actor = ?2))
    UNION ALL
    SELECT h.id, h.revision, h.previous FROM walk JOIN snapshot_history AS h ON h.id = walk.previous
    WHERE walk.revision > ?3
  )
  SELECT h.revision, h.status, h.node, h.tags, h.data_type, h.data, h.has_state
  FROM walk JOIN snapshot_history AS h ON h.id = walk.id WHERE walk.revision = ?3 LIMIT 1
)sql";

// Same id again replaces the whole row; inserted_at records when this version was written.
constexpr std::string_view kPutScheduled = R"sql(
  INSERT INTO scheduled_invocations (id, due_ms, system, actor, request, inserted_at)
  VALUES (?1, ?2, ?3, ?4, ?5, ?6)
  ON CONFLICT (id) DO UPDATE SET
    due_ms = excluded.due_ms, system = excluded.system, actor = excluded.actor,
    request = excluded.request, inserted_at = excluded.inserted_at
)sql";

constexpr std::string_view kRemoveScheduled = "DELETE FROM scheduled_invocations WHERE id = ?1";

// A range scan of the (due_ms, id) index, already in the order returned: no sort.
constexpr std::string_view kDueScheduled = R"sql(
  SELECT id, due_ms, system, actor, request FROM scheduled_invocations
  WHERE due_ms <= ?1 ORDER BY due_ms, id LIMIT ?2
)sql";

constexpr std::string_view kCountScheduled = "SELECT count(*) FROM scheduled_invocations";

// Runs a statement that returns no rows and makes it ready to run again.
Result<void> run(Statement& statement) {
  Result<bool> stepped = statement.step();
  statement.reset();
  if (!stepped) {
    return std::move(stepped).error();
  }
  return ok();
}

// As run(), for a statement whose every parameter is either bound again before each run or
// bound to memory the writer owns (KeptText): its bindings are left as they are, which saves
// clearing them.
Result<void> run_rebound(Statement& statement) {
  Result<bool> stepped = statement.step();
  statement.reset_keeping_bindings();
  if (!stepped) {
    return std::move(stepped).error();
  }
  return ok();
}

// Runs an UPDATE ... RETURNING rowid and makes it ready to run again. Returns the rowid of the
// row it updated, 0 when it updated none.
Result<std::int64_t> run_returning_rowid(Statement& statement) {
  Result<bool> stepped = statement.step();
  const std::int64_t rowid = stepped && *stepped ? statement.column_int64(0) : 0;
  statement.reset();
  if (!stepped) {
    return std::move(stepped).error();
  }
  return rowid;
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

/// A parameter of a statement whose bindings are kept between runs (see run_rebound()), bound to
/// a copy of its value that it owns and bound again only when the value changes. Binding costs
/// far more than comparing, and consecutive saves mostly repeat their system, status, node, tags
/// and type, and the transaction's time. `Value` is std::string (text) or std::int64_t.
template <class Value>
class Kept {
public:
  explicit Kept(int index) : index_(index) {}

  /// Makes the parameter of `statement` hold `value`.
  template <class Given>
  void bind(Statement& statement, const Given& value) {
    if (bound_ && value == value_) {
      return;
    }
    value_ = value;
    if constexpr (std::is_same_v<Value, std::string>) {
      statement.bind_text(index_, value_);
    } else {
      statement.bind_int64(index_, value_);
    }
    bound_ = true;
  }

private:
  int index_;
  bool bound_ = false;
  Value value_{};
};

using KeptText = Kept<std::string>;
using KeptInt = Kept<std::int64_t>;

/// The kept parameters of kAppend or kUpdateRow (see Writer::bind_kept()).
struct KeptParameters {
  KeptText system{1};  // kAppend only
  KeptText status{3};
  KeptText node{4};
  KeptText tags{5};
  KeptText data_type{6};
  KeptInt has_state{8};
  KeptText now{9};
};

/// The write connection and its statements; used only by the writer thread.
class Writer final : public BatchWriter {
public:
  static Result<std::unique_ptr<Writer>> create(Connection db) {
    std::unique_ptr<Writer> writer(new Writer(std::move(db)));
    for (auto [statement, sql] :
         {std::pair{&writer->select_revision_, kSelectRevision},
          std::pair{&writer->record_first_, kRecordFirst}, std::pair{&writer->record_, kRecord},
          std::pair{&writer->insert_, kInsert}, std::pair{&writer->update_, kUpdate},
          std::pair{&writer->anchor_, kAnchor}, std::pair{&writer->append_, kAppend},
          std::pair{&writer->update_head_, kUpdateHead},
          std::pair{&writer->update_row_, kUpdateRow}, std::pair{&writer->unappend_, kUnappend},
          std::pair{&writer->put_scheduled_, kPutScheduled},
          std::pair{&writer->remove_scheduled_, kRemoveScheduled},
          std::pair{&writer->begin_, std::string_view("BEGIN IMMEDIATE")},
          std::pair{&writer->commit_, std::string_view("COMMIT")}}) {
      Result<Statement> prepared = writer->db_.prepare(sql);
      if (!prepared) {
        return std::move(prepared).error();
      }
      *statement = std::move(*prepared);
    }
    return writer;
  }

  /// Commits `batch` and completes every request in it. Returns how many transactions it took
  /// (a batch that failed and was retried one by one counts each attempt).
  std::size_t write(std::span<WriteRequest> batch) override {
    std::size_t transactions = 1;
    std::vector<WriteOutcome> results;
    results.reserve(batch.size());
    Result<void> committed = transact(batch, results);
    if (!committed) {
      results.clear();
      if (batch.size() == 1) {
        results.emplace_back(committed.error().with_context(describe(batch[0])));
      } else {
        // One failing write must not fail the writes batched with it: retry each on its own.
        transactions += batch.size();
        for (WriteRequest& request : batch) {
          std::vector<WriteOutcome> single;
          Result<void> alone = transact(std::span(&request, 1), single);
          if (alone) {
            results.push_back(std::move(single.front()));
          } else {
            results.emplace_back(alone.error().with_context(describe(request)));
          }
        }
      }
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
      deliver(batch[i], std::move(results[i]));
    }
    return transactions;
  }

private:
  /// What apply() did, wrapped so that a conflict (an outcome) can't be mistaken for a SQLite
  /// error (which aborts the transaction).
  struct Applied {
    WriteOutcome outcome;
  };

  explicit Writer(Connection db) : db_(std::move(db)) {}

  // Runs `requests` in one transaction, appending each one's outcome to `results`. Fails (and
  // rolls back) only on a SQLite error; a revision conflict is an outcome, not a failure.
  Result<void> transact(std::span<WriteRequest> requests, std::vector<WriteOutcome>& results) {
    if (Result<void> begun = run(begin_); !begun) {
      return begun;
    }
    const std::string now = now_utc();
    for (WriteRequest& request : requests) {
      Result<Applied> applied =
          std::visit([&](const auto& op) { return apply(unbox(op.payload), now); }, request);
      if (!applied) {
        (void)db_.exec("ROLLBACK");
        heads_.clear();  // some may name rows that were rolled back
        results.clear();
        return std::move(applied).error();
      }
      results.push_back(std::move(applied->outcome));
    }
    if (Result<void> committed = run(commit_); !committed) {
      (void)db_.exec("ROLLBACK");
      heads_.clear();
      results.clear();
      return committed;
    }
    return ok();
  }

  // Compare-and-set of one save, inside the open transaction: it sees the writes of the saves
  // before it in the batch, so the first of two saves at the same revision wins.
  Result<Applied> apply(const Save& save, const std::string& now) {
    const std::int64_t expected = save.expected_revision;
    const std::int64_t revision = expected + 1;
    Result<std::optional<std::int64_t>> fast = append_known_head(save, now);
    if (!fast) {
      return fast.error();
    }
    std::int64_t history_id = 0;
    if (fast->has_value()) {
      history_id = **fast;  // the actor's head is updated already
    } else {
      std::int64_t row = 0;
      Statement& record = expected > 0 ? record_ : record_first_;
      bind(record, save, now);
      if (Result<void> recorded = run(record); !recorded) {
        return recorded.error();
      }
      if (db_.changes() == 0) {
        heads_.erase(save.key);
        return conflict(save);
      }
      history_id = db_.last_insert_rowid();
      Statement& write = expected > 0 ? update_ : insert_;
      bind(write, save, now);
      write.bind_int64(11, history_id);
      if (expected > 0) {
        Result<std::int64_t> updated = run_returning_rowid(write);
        if (!updated) {
          return updated.error();
        }
        row = *updated;
      } else {
        if (Result<void> written = run(write); !written) {
          return written.error();
        }
        row = db_.last_insert_rowid();
      }
      if (heads_.size() >= kMaxHeads) {
        heads_.clear();
      }
      heads_.insert_or_assign(save.key,
                              Head{.revision = revision, .history_id = history_id, .row = row});
    }
    if (revision % kAnchorEvery == 0) {
      anchor_.bind_text(1, save.key.system);
      anchor_.bind_text(2, save.key.name);
      anchor_.bind_int64(3, revision);
      anchor_.bind_int64(4, history_id);
      if (Result<void> anchored = run(anchor_); !anchored) {
        return anchored.error();
      }
    }
    return Applied{revision};
  }

  // The fast path of a later save: when this writer knows the actor's row is at the expected
  // revision with history id H, appends the new row (previous H) and updates the snapshot row
  // only if it still has that revision and H (found by its rowid when known, else by key).
  // Returns the new history row's id, with the actor's head moved to it, or nullopt when the
  // slow path must run: the head is unknown or stale (another process wrote the actor; the
  // append is then taken back).
  Result<std::optional<std::int64_t>> append_known_head(const Save& save, const std::string& now) {
    if (save.expected_revision == 0) {
      return std::optional<std::int64_t>();
    }
    const auto head = heads_.find(save.key);
    if (head == heads_.end() || head->second.revision != save.expected_revision) {
      return std::optional<std::int64_t>();
    }
    const std::int64_t previous = head->second.history_id;
    const std::int64_t known_row = head->second.row;
    append_kept_.system.bind(append_, save.key.system);
    append_.bind_text(2, save.key.name);
    bind_kept(append_, append_kept_, save, now);
    append_.bind_int64(11, previous);
    if (Result<void> appended = run_rebound(append_); !appended) {
      return appended.error();
    }
    const std::int64_t history_id = db_.last_insert_rowid();
    std::int64_t row = 0;
    if (known_row != 0) {
      bind_kept(update_row_, update_row_kept_, save, now);
      update_row_.bind_int64(11, previous);
      update_row_.bind_int64(12, history_id);
      update_row_.bind_int64(13, known_row);
      if (Result<void> updated = run_rebound(update_row_); !updated) {
        return updated.error();
      }
      row = db_.changes() == 1 ? known_row : 0;
    } else {
      bind(update_head_, save, now);
      update_head_.bind_int64(11, previous);
      update_head_.bind_int64(12, history_id);
      Result<std::int64_t> updated = run_returning_rowid(update_head_);
      if (!updated) {
        return updated.error();
      }
      row = *updated;
    }
    if (row != 0) {
      head->second =
          Head{.revision = save.expected_revision + 1, .history_id = history_id, .row = row};
      return std::optional<std::int64_t>(history_id);
    }
    unappend_.bind_int64(1, history_id);
    if (Result<void> taken_back = run(unappend_); !taken_back) {
      return taken_back.error();
    }
    heads_.erase(head);
    return std::optional<std::int64_t>();
  }

  // Binds ?1 to ?10 of kRecordFirst, kRecord, kInsert, kUpdate and kUpdateHead.
  static void bind(Statement& statement, const Save& save, const std::string& now) {
    const Snapshot& snapshot = save.snapshot;
    statement.bind_text(1, save.key.system);
    statement.bind_text(2, save.key.name);
    statement.bind_text(3, status_text(snapshot.status));
    statement.bind_text(4, snapshot.node);
    statement.bind_text(5, save.tags_json);
    if (snapshot.has_state) {
      statement.bind_text(6, snapshot.type_url);
      statement.bind_blob(7, snapshot.data);
    } else {
      statement.bind_text(6, "");
      statement.bind_null(7);
    }
    statement.bind_int64(8, snapshot.has_state ? 1 : 0);
    statement.bind_text(9, now);
    statement.bind_int64(10, save.expected_revision);
  }

  // Binds ?3 to ?10 as bind() does, for kAppend and kUpdateRow, whose bindings are kept between
  // runs: the values saves mostly repeat are bound only when they change.
  static void bind_kept(Statement& statement, KeptParameters& kept, const Save& save,
                        const std::string& now) {
    const Snapshot& snapshot = save.snapshot;
    kept.status.bind(statement, status_text(snapshot.status));
    kept.node.bind(statement, snapshot.node);
    kept.tags.bind(statement, save.tags_json);
    if (snapshot.has_state) {
      kept.data_type.bind(statement, snapshot.type_url);
      statement.bind_blob(7, snapshot.data);
    } else {
      kept.data_type.bind(statement, "");
      statement.bind_null(7);
    }
    kept.has_state.bind(statement, snapshot.has_state ? 1 : 0);
    kept.now.bind(statement, now);
    statement.bind_int64(10, save.expected_revision);
  }

  // The outcome of a save whose expected revision is not the stored one.
  Result<Applied> conflict(const Save& save) {
    select_revision_.bind_text(1, save.key.system);
    select_revision_.bind_text(2, save.key.name);
    Result<bool> found = select_revision_.step();
    const std::int64_t stored = found && *found ? select_revision_.column_int64(0) : 0;
    select_revision_.reset();
    if (!found) {
      return std::move(found).error();
    }
    return Applied{fail(ErrorCode::kConflict, describe(save) + ": revision conflict (expected "
                                                  + std::to_string(save.expected_revision)
                                                  + ", stored " + std::to_string(stored) + ")")};
  }

  Result<Applied> apply(const PutScheduled& put, const std::string& now) {
    const ScheduledInvocation& invocation = put.invocation;
    put_scheduled_.bind_text(1, invocation.id);
    put_scheduled_.bind_int64(2, invocation.due_ms);
    put_scheduled_.bind_text(3, invocation.system);
    put_scheduled_.bind_text(4, invocation.actor);
    put_scheduled_.bind_blob(5, invocation.request);
    put_scheduled_.bind_text(6, now);
    if (Result<void> put_done = run(put_scheduled_); !put_done) {
      return put_done.error();
    }
    return Applied{0};
  }

  Result<Applied> apply(const RemoveScheduled& remove, const std::string& /*now*/) {
    for (const std::string& id : remove.ids) {
      remove_scheduled_.bind_text(1, id);
      if (Result<void> removed = run(remove_scheduled_); !removed) {
        return removed.error();
      }
    }
    return Applied{0};
  }

  // db_ first: statements are finalized before their connection closes.
  Connection db_;
  Statement select_revision_;
  Statement record_first_;
  Statement record_;
  Statement insert_;
  Statement update_;
  Statement anchor_;
  Statement append_;
  Statement update_head_;
  Statement update_row_;
  Statement unappend_;
  KeptParameters append_kept_;
  KeptParameters update_row_kept_;

  /// An actor's snapshot row as this writer last wrote it.
  struct Head {
    std::int64_t revision = 0;
    std::int64_t history_id = 0;
    /// The rowid of its `snapshots` row; 0 when not known.
    std::int64_t row = 0;
  };

  // Most actors the writer remembers; past that it forgets them all and relearns from saves.
  static constexpr std::size_t kMaxHeads = std::size_t{1} << 16;

  // The head of each actor this writer saved, including the open transaction's saves (cleared
  // when one rolls back). Only a hint for the fast path: kUpdateHead checks it in the file, so a
  // stale entry (another process saved the actor) costs a slow save, never a wrong one.
  std::unordered_map<ActorKey, Head> heads_;
  Statement put_scheduled_;
  Statement remove_scheduled_;
  Statement begin_;
  Statement commit_;
};

/// A read connection and its statements; used only by its reader thread.
class Reader final : public RequestReader {
public:
  static Result<std::unique_ptr<Reader>> create(Connection db) {
    std::unique_ptr<Reader> reader(new Reader(std::move(db)));
    for (auto [statement, sql] :
         {std::pair{&reader->begin_, std::string_view("BEGIN")},
          std::pair{&reader->commit_, std::string_view("COMMIT")}, std::pair{&reader->load_, kLoad},
          std::pair{&reader->load_revision_, kLoadRevision},
          std::pair{&reader->due_scheduled_, kDueScheduled},
          std::pair{&reader->count_scheduled_, kCountScheduled}}) {
      Result<Statement> prepared = reader->db_.prepare(sql);
      if (!prepared) {
        return std::move(prepared).error();
      }
      *statement = std::move(*prepared);
    }
    return reader;
  }

  /// Runs `request` and sets its result.
  void serve(ReadRequest& request) override {
    std::visit([this](auto& op) { op.completion.set(read(op.payload)); }, request);
  }

  /// Serves `batch` in one read transaction: one snapshot of the file, and one WAL read lock
  /// taken and released for all of them instead of one per statement.
  void serve_all(std::span<ReadRequest> batch) override {
    // Without the transaction each statement still runs, on its own snapshot.
    const bool in_transaction = batch.size() > 1 && run(begin_);
    for (ReadRequest& request : batch) {
      serve(request);
    }
    if (in_transaction && !run(commit_)) {
      (void)db_.exec("ROLLBACK");
    }
  }

private:
  explicit Reader(Connection db) : db_(std::move(db)) {}

  // Reads the snapshot `load` asks for.
  Result<std::optional<Snapshot>> read(const Load& load) {
    Statement& statement = load.revision == kNewest ? load_ : load_revision_;
    statement.bind_text(1, load.key.system);
    statement.bind_text(2, load.key.name);
    if (load.revision != kNewest) {
      statement.bind_int64(3, load.revision);
    }
    Result<std::optional<Snapshot>> snapshot = read_row(statement);
    statement.reset();
    if (!snapshot) {
      return snapshot.error().with_context(actor_context("load", load.key));
    }
    return snapshot;
  }

  Result<std::vector<ScheduledInvocation>> read(const DueScheduled& due) {
    due_scheduled_.bind_int64(1, due.until_ms);
    due_scheduled_.bind_int64(2, due.limit);
    std::vector<ScheduledInvocation> invocations;
    for (;;) {
      Result<bool> row = due_scheduled_.step();
      if (!row) {
        due_scheduled_.reset();
        return row.error().with_context("load due scheduled invocations");
      }
      if (!*row) {
        break;
      }
      invocations.push_back(ScheduledInvocation{
          .id = std::string(due_scheduled_.column_text(0)),
          .due_ms = due_scheduled_.column_int64(1),
          .system = std::string(due_scheduled_.column_text(2)),
          .actor = std::string(due_scheduled_.column_text(3)),
          .request = std::string(due_scheduled_.column_blob(4)),
      });
    }
    due_scheduled_.reset();
    return invocations;
  }

  Result<std::int64_t> read(const CountScheduled& /*count*/) {
    Result<bool> row = count_scheduled_.step();
    const std::int64_t count = row && *row ? count_scheduled_.column_int64(0) : 0;
    count_scheduled_.reset();
    if (!row) {
      return row.error().with_context("count scheduled invocations");
    }
    return count;
  }

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
  Statement begin_;
  Statement commit_;
  Statement load_;
  Statement load_revision_;
  Statement due_scheduled_;
  Statement count_scheduled_;
};

}  // namespace

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
  Result<std::unique_ptr<Writer>> writer = Writer::create(std::move(*db));
  if (!writer) {
    return writer.error().with_context(context);
  }
  std::vector<std::unique_ptr<RequestReader>> readers;
  for (std::size_t i = 0; i < std::max<std::size_t>(options.reader_threads, 1); ++i) {
    Result<Connection> read_db = Connection::open(file, /*create=*/false, busy_ms);
    if (!read_db) {
      return read_db.error().with_context(context);
    }
    if (Result<void> read_only = read_db->exec("PRAGMA query_only = ON"); !read_only) {
      return read_only.error().with_context(context);
    }
    // Readers map the file instead of copying each page they miss into their own cache (which
    // SQLite empties whenever another connection committed): a cold load then reads the file's
    // pages in place. Pages still in the WAL are read as before.
    if (Result<void> mapped = read_db->exec(kReaderMmap); !mapped) {
      return mapped.error().with_context(context);
    }
    Result<std::unique_ptr<Reader>> reader = Reader::create(std::move(*read_db));
    if (!reader) {
      return reader.error().with_context(context);
    }
    readers.push_back(std::move(*reader));
  }
  // QueuedStore closes the readers' connections before the writer's, so the last close (the
  // writer's) checkpoints the WAL into the file.
  Result<std::unique_ptr<QueuedStore>> queued =
      QueuedStore::start(QueueOptions{.node = std::move(options.node),
                                      .group_commit = options.group_commit,
                                      .max_batch = options.max_batch,
                                      .max_read_batch = kMaxReadBatch},
                         std::move(*writer), std::move(readers));
  if (!queued) {
    return queued.error().with_context(context);
  }
  return std::unique_ptr<SqliteStore>(new SqliteStore(std::move(file), std::move(*queued)));
}

SqliteStore::SqliteStore(std::filesystem::path file, std::unique_ptr<QueuedStore> queued)
    : file_(std::move(file)), queued_(std::move(queued)) {}

SqliteStore::~SqliteStore() = default;

const std::filesystem::path& SqliteStore::file() const {
  return file_;
}

std::uint64_t SqliteStore::transactions_for_test() const {
  return queued_->transactions();
}

Task<Result<std::optional<Snapshot>>> SqliteStore::load(ActorKey key) {
  return queued_->load(std::move(key));
}

Task<Result<std::optional<Snapshot>>> SqliteStore::load_revision(ActorKey key,
                                                                 std::int64_t revision) {
  return queued_->load_revision(std::move(key), revision);
}

Task<Result<std::int64_t>> SqliteStore::save(ActorKey key, Snapshot snapshot,
                                             std::int64_t expected_revision) {
  return queued_->save(std::move(key), std::move(snapshot), expected_revision);
}

Task<Result<void>> SqliteStore::put_scheduled(ScheduledInvocation invocation) {
  return queued_->put_scheduled(std::move(invocation));
}

Task<Result<std::vector<ScheduledInvocation>>> SqliteStore::due_scheduled(std::int64_t until_ms,
                                                                          std::size_t limit) {
  return queued_->due_scheduled(until_ms, limit);
}

Task<Result<void>> SqliteStore::remove_scheduled(std::vector<std::string> ids) {
  return queued_->remove_scheduled(std::move(ids));
}

Task<Result<std::int64_t>> SqliteStore::count_scheduled() {
  return queued_->count_scheduled();
}

}  // namespace spawn::statestore::sqlite

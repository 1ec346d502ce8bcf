using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using DbMigration.Providers.Sqlite;
using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace DbMigration.Timezone;

/// <summary>One converted column's SQL function: its name, where its counts go, and what issues are filed under.</summary>
internal sealed record SqliteColumnFunction(string Name, string Table, string Column, TimestampTally Tally);

/// <summary>
/// Registers, on one SQLite connection, a scalar function per column: f(value, key) returns the value's UTC
/// replacement, or NULL to keep it, and counts it. The statement that converts a table calls it for each row, so
/// values never leave the engine's loop. The functions are registered with SQLite's C API directly, through
/// unmanaged function pointers from the same e_sqlite3 library Microsoft.Data.Sqlite uses: a call then costs no
/// allocation, which matters at millions of rows. Analysis registers the same functions returning only NULL.
/// </summary>
internal sealed unsafe class SqliteTimestampFunctions : IDisposable
{
    public const int ProgressEvery = 65_536;
    private const int MaxInline = 64;
    private const int SqliteOk = 0;
    private const int SqliteUtf8 = 1;
    private const int SqliteInteger = 1;
    private const int SqliteFloat = 2;
    private const int SqliteText = 3;
    private const int SqliteNull = 5;
    private static readonly IntPtr Transient = new(-1);

    private readonly SqliteConnection _connection;
    private readonly List<(string Name, GCHandle State)> _registered = [];

    /// <param name="progress">Called with the rows seen so far, every <see cref="ProgressEvery"/> rows of the first column.</param>
    public SqliteTimestampFunctions(SqliteConnection connection, TextTimestampConverter converter, IEnumerable<SqliteColumnFunction> functions, List<TimestampIssue> issues, bool countOnly, Action<long>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(connection);
        _connection = connection;
        var db = Database;
        var first = true;
        foreach (var function in functions)
        {
            var state = GCHandle.Alloc(new State(converter, function, issues, countOnly, first ? progress : null));
            first = false;
            var rc = Create(db, function.Name, GCHandle.ToIntPtr(state), &Invoke);
            if (rc != SqliteOk)
            {
                state.Free();
                throw new InvalidOperationException($"Could not register SQLite function {function.Name}: {SqliteNative.ErrorMessage(db)}");
            }

            _registered.Add((function.Name, state));
        }
    }

    /// <summary>
    /// Makes SQLite's sorter read its temporary files instead of memory-mapping them, for this connection. Building
    /// a large index otherwise maps hundreds of megabytes of sort runs into the process (they count as resident
    /// memory, though the kernel can drop them). SQLite offers this only as a test control
    /// (SQLITE_TESTCTRL_SORTER_MMAP); where it cannot be called, nothing changes but the memory figure.
    /// </summary>
    public static void ReadSortRunsWithoutMmap(SqliteConnection connection)
    {
        const int sorterMmap = 24;
        if (SqliteNative.TestControl != null && connection.Handle is { IsInvalid: false } handle)
        {
            SqliteNative.TestControl(sorterMmap, handle.DangerousGetHandle(), 0);
        }
    }

    private IntPtr Database => (_connection.Handle ?? throw new InvalidOperationException("The SQLite connection is not open.")).DangerousGetHandle();

    public void Dispose()
    {
        // Unregister first: SQLite must not call into a freed handle.
        var db = _connection.Handle is { IsInvalid: false } handle ? handle.DangerousGetHandle() : IntPtr.Zero;
        foreach (var (name, state) in _registered)
        {
            if (db != IntPtr.Zero)
            {
                Create(db, name, IntPtr.Zero, null);
            }

            state.Free();
        }

        _registered.Clear();
    }

    private static int Create(IntPtr db, string name, IntPtr state, delegate* unmanaged[Cdecl]<IntPtr, int, IntPtr*, void> function)
    {
        var utf8 = Encoding.UTF8.GetBytes(name + "\0");
        fixed (byte* z = utf8)
        {
            return SqliteNative.CreateFunction(db, z, 2, SqliteUtf8, state, function, null, null, null);
        }
    }

    private sealed class State(TextTimestampConverter converter, SqliteColumnFunction function, List<TimestampIssue> issues, bool countOnly, Action<long>? progress)
    {
        public TextTimestampConverter Converter { get; } = converter;

        public SqliteColumnFunction Function { get; } = function;

        public List<TimestampIssue> Issues { get; } = issues;

        public bool CountOnly { get; } = countOnly;

        public Action<long>? Progress { get; } = progress;
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void Invoke(IntPtr context, int argc, IntPtr* argv)
    {
        State? state = null;
        try
        {
            state = (State)GCHandle.FromIntPtr(SqliteNative.UserData(context)).Target!;
            Convert(context, state, argv[0], argv[1]);
        }
        catch (Exception ex)
        {
            // SQLite reports it as the statement's error, and the transaction rolls back.
            var message = Encoding.UTF8.GetBytes($"{state?.Function.Table}.{state?.Function.Column}: {ex.Message}");
            fixed (byte* z = message)
            {
                SqliteNative.ResultError(context, z, message.Length);
            }
        }
    }

    private static void Convert(IntPtr context, State state, IntPtr value, IntPtr key)
    {
        var tally = state.Function.Tally;
        tally.Rows++;
        if ((tally.Rows & (ProgressEvery - 1)) == 0)
        {
            state.Progress?.Invoke(tally.Rows);
        }

        switch (SqliteNative.ValueType(value))
        {
            case SqliteNull:
                tally.Nulls++;
                SqliteNative.ResultNull(context);
                return;

            case SqliteText:
                {
                    var bytes = new ReadOnlySpan<byte>(SqliteNative.ValueBlob(value), SqliteNative.ValueBytes(value));
                    if (bytes.EndsWith(state.Converter.Marker))
                    {
                        tally.Marked++;
                    }

                    Span<byte> output = stackalloc byte[TimestampParser.MaxFormattedLength];
                    bool changed;
                    int written;
                    string? issue;
                    if (bytes.Length <= MaxInline)
                    {
                        // Timestamps are ASCII: widen byte for byte; any other byte simply fails to parse.
                        Span<char> text = stackalloc char[bytes.Length];
                        for (var i = 0; i < bytes.Length; i++)
                        {
                            text[i] = (char)bytes[i];
                        }

                        changed = state.Converter.TryConvert(text, tally, output, out written, out issue);
                    }
                    else
                    {
                        changed = state.Converter.TryConvert(Encoding.UTF8.GetString(bytes), tally, output, out written, out issue);
                    }

                    if (issue is not null)
                    {
                        Report(state, key, Encoding.UTF8.GetString(bytes), issue);
                    }

                    if (!changed || state.CountOnly)
                    {
                        SqliteNative.ResultNull(context);
                        return;
                    }

                    fixed (byte* z = output)
                    {
                        SqliteNative.ResultText(context, z, written, Transient);
                    }

                    return;
                }

            case SqliteInteger:
                {
                    // An integer keeps its type: epoch numbers already are UTC instants.
                    var digits = SqliteNative.ValueInt64(value).ToString(CultureInfo.InvariantCulture);
                    if (TimestampParser.Parse(digits).Kind is TimestampKind.EpochSeconds or TimestampKind.EpochMilliseconds)
                    {
                        tally.Epoch++;
                    }
                    else
                    {
                        tally.Unparseable++;
                        Report(state, key, digits, "unparseable");
                    }

                    SqliteNative.ResultNull(context);
                    return;
                }

            case SqliteFloat:
                tally.Unparseable++;
                Report(state, key, SqliteNative.ValueDouble(value).ToString(CultureInfo.InvariantCulture), "unparseable");
                SqliteNative.ResultNull(context);
                return;

            default:
                tally.Unparseable++;
                Report(state, key, $"(blob, {SqliteNative.ValueBytes(value)} bytes)", "unparseable");
                SqliteNative.ResultNull(context);
                return;
        }
    }

    private static void Report(State state, IntPtr key, string value, string issue)
    {
        var keyText = SqliteNative.ValueType(key) == SqliteInteger
            ? SqliteNative.ValueInt64(key).ToString(CultureInfo.InvariantCulture)
            : Encoding.UTF8.GetString(new ReadOnlySpan<byte>(SqliteNative.ValueBlob(key), SqliteNative.ValueBytes(key)));
        state.Issues.Add(new TimestampIssue(state.Function.Table, state.Function.Column, keyText, value, issue));
    }
}

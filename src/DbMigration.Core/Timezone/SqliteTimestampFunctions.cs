using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
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
                throw new InvalidOperationException($"Could not register SQLite function {function.Name}: {Native.ErrorMessage(db)}");
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
        if (Native.TestControl != null && connection.Handle is { IsInvalid: false } handle)
        {
            Native.TestControl(sorterMmap, handle.DangerousGetHandle(), 0);
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
            return Native.CreateFunction(db, z, 2, SqliteUtf8, state, function, null, null, null);
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
            state = (State)GCHandle.FromIntPtr(Native.UserData(context)).Target!;
            Convert(context, state, argv[0], argv[1]);
        }
        catch (Exception ex)
        {
            // SQLite reports it as the statement's error, and the transaction rolls back.
            var message = Encoding.UTF8.GetBytes($"{state?.Function.Table}.{state?.Function.Column}: {ex.Message}");
            fixed (byte* z = message)
            {
                Native.ResultError(context, z, message.Length);
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

        switch (Native.ValueType(value))
        {
            case SqliteNull:
                tally.Nulls++;
                Native.ResultNull(context);
                return;

            case SqliteText:
                {
                    var bytes = new ReadOnlySpan<byte>(Native.ValueBlob(value), Native.ValueBytes(value));
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
                        Native.ResultNull(context);
                        return;
                    }

                    fixed (byte* z = output)
                    {
                        Native.ResultText(context, z, written, Transient);
                    }

                    return;
                }

            case SqliteInteger:
                {
                    // An integer keeps its type: epoch numbers already are UTC instants.
                    var digits = Native.ValueInt64(value).ToString(CultureInfo.InvariantCulture);
                    if (TimestampParser.Parse(digits).Kind is TimestampKind.EpochSeconds or TimestampKind.EpochMilliseconds)
                    {
                        tally.Epoch++;
                    }
                    else
                    {
                        tally.Unparseable++;
                        Report(state, key, digits, "unparseable");
                    }

                    Native.ResultNull(context);
                    return;
                }

            case SqliteFloat:
                tally.Unparseable++;
                Report(state, key, Native.ValueDouble(value).ToString(CultureInfo.InvariantCulture), "unparseable");
                Native.ResultNull(context);
                return;

            default:
                tally.Unparseable++;
                Report(state, key, $"(blob, {Native.ValueBytes(value)} bytes)", "unparseable");
                Native.ResultNull(context);
                return;
        }
    }

    private static void Report(State state, IntPtr key, string value, string issue)
    {
        var keyText = Native.ValueType(key) == SqliteInteger
            ? Native.ValueInt64(key).ToString(CultureInfo.InvariantCulture)
            : Encoding.UTF8.GetString(new ReadOnlySpan<byte>(Native.ValueBlob(key), Native.ValueBytes(key)));
        state.Issues.Add(new TimestampIssue(state.Function.Table, state.Function.Column, keyText, value, issue));
    }

    /// <summary>
    /// Entry points of the e_sqlite3 library SQLitePCLRaw already loaded, resolved the way its own imports are
    /// (so inside the module's load context too).
    /// </summary>
    private static class Native
    {
        private static readonly IntPtr Library = Load();

        public static readonly delegate* unmanaged[Cdecl]<IntPtr, byte*, int, int, IntPtr, delegate* unmanaged[Cdecl]<IntPtr, int, IntPtr*, void>, void*, void*, void*, int> CreateFunction =
            (delegate* unmanaged[Cdecl]<IntPtr, byte*, int, int, IntPtr, delegate* unmanaged[Cdecl]<IntPtr, int, IntPtr*, void>, void*, void*, void*, int>)Export("sqlite3_create_function_v2");

        public static readonly delegate* unmanaged[Cdecl]<IntPtr, IntPtr> UserData = (delegate* unmanaged[Cdecl]<IntPtr, IntPtr>)Export("sqlite3_user_data");
        public static readonly delegate* unmanaged[Cdecl]<IntPtr, int> ValueType = (delegate* unmanaged[Cdecl]<IntPtr, int>)Export("sqlite3_value_type");
        public static readonly delegate* unmanaged[Cdecl]<IntPtr, byte*> ValueBlob = (delegate* unmanaged[Cdecl]<IntPtr, byte*>)Export("sqlite3_value_blob");
        public static readonly delegate* unmanaged[Cdecl]<IntPtr, int> ValueBytes = (delegate* unmanaged[Cdecl]<IntPtr, int>)Export("sqlite3_value_bytes");
        public static readonly delegate* unmanaged[Cdecl]<IntPtr, long> ValueInt64 = (delegate* unmanaged[Cdecl]<IntPtr, long>)Export("sqlite3_value_int64");
        public static readonly delegate* unmanaged[Cdecl]<IntPtr, double> ValueDouble = (delegate* unmanaged[Cdecl]<IntPtr, double>)Export("sqlite3_value_double");
        public static readonly delegate* unmanaged[Cdecl]<IntPtr, void> ResultNull = (delegate* unmanaged[Cdecl]<IntPtr, void>)Export("sqlite3_result_null");
        public static readonly delegate* unmanaged[Cdecl]<IntPtr, byte*, int, IntPtr, void> ResultText = (delegate* unmanaged[Cdecl]<IntPtr, byte*, int, IntPtr, void>)Export("sqlite3_result_text");
        public static readonly delegate* unmanaged[Cdecl]<IntPtr, byte*, int, void> ResultError = (delegate* unmanaged[Cdecl]<IntPtr, byte*, int, void>)Export("sqlite3_result_error");
        private static readonly delegate* unmanaged[Cdecl]<IntPtr, byte*> ErrorMessagePointer = (delegate* unmanaged[Cdecl]<IntPtr, byte*>)Export("sqlite3_errmsg");

        // Variadic in C; called with fixed arguments, which only matches where variadic integers travel in the same
        // registers as fixed ones (everywhere but Apple's arm64 ABI).
        public static readonly delegate* unmanaged[Cdecl]<int, IntPtr, int, int> TestControl =
            OperatingSystem.IsMacOS() && RuntimeInformation.ProcessArchitecture == Architecture.Arm64 || !NativeLibrary.TryGetExport(Library, "sqlite3_test_control", out var testControl)
                ? null
                : (delegate* unmanaged[Cdecl]<int, IntPtr, int, int>)testControl;

        public static string ErrorMessage(IntPtr db) => Marshal.PtrToStringUTF8((IntPtr)ErrorMessagePointer(db)) ?? "unknown error";

        private static IntPtr Load()
        {
            Batteries_V2.Init();
            return NativeLibrary.Load("e_sqlite3", typeof(raw).Assembly, null);
        }

        private static IntPtr Export(string name) => NativeLibrary.GetExport(Library, name);
    }
}

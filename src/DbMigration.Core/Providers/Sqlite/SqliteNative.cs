using System.Runtime.InteropServices;
using SQLitePCL;

namespace DbMigration.Providers.Sqlite;

/// <summary>
/// Entry points of the e_sqlite3 library SQLitePCLRaw already loaded, resolved the way its own imports are
/// (so inside the module's load context too).
/// </summary>
internal static unsafe class SqliteNative
{
    private static readonly IntPtr Library = Load();

    public static readonly delegate* unmanaged[Cdecl]<IntPtr, byte*, int, int, IntPtr, delegate* unmanaged[Cdecl]<IntPtr, int, IntPtr*, void>, void*, void*, void*, int> CreateFunction =
        (delegate* unmanaged[Cdecl]<IntPtr, byte*, int, int, IntPtr, delegate* unmanaged[Cdecl]<IntPtr, int, IntPtr*, void>, void*, void*, void*, int>)Export("sqlite3_create_function_v2");

    // The calls made for every value of a conversion are short leaf functions that never block or call back, so they
    // skip the GC mode switch (measured: about 5% off a 1M-row SQLite conversion's fill).
    public static readonly delegate* unmanaged[Cdecl, SuppressGCTransition]<IntPtr, IntPtr> UserData = (delegate* unmanaged[Cdecl, SuppressGCTransition]<IntPtr, IntPtr>)Export("sqlite3_user_data");
    public static readonly delegate* unmanaged[Cdecl, SuppressGCTransition]<IntPtr, int> ValueType = (delegate* unmanaged[Cdecl, SuppressGCTransition]<IntPtr, int>)Export("sqlite3_value_type");
    public static readonly delegate* unmanaged[Cdecl, SuppressGCTransition]<IntPtr, byte*> ValueBlob = (delegate* unmanaged[Cdecl, SuppressGCTransition]<IntPtr, byte*>)Export("sqlite3_value_blob");
    public static readonly delegate* unmanaged[Cdecl, SuppressGCTransition]<IntPtr, int> ValueBytes = (delegate* unmanaged[Cdecl, SuppressGCTransition]<IntPtr, int>)Export("sqlite3_value_bytes");
    public static readonly delegate* unmanaged[Cdecl, SuppressGCTransition]<IntPtr, long> ValueInt64 = (delegate* unmanaged[Cdecl, SuppressGCTransition]<IntPtr, long>)Export("sqlite3_value_int64");
    public static readonly delegate* unmanaged[Cdecl, SuppressGCTransition]<IntPtr, double> ValueDouble = (delegate* unmanaged[Cdecl, SuppressGCTransition]<IntPtr, double>)Export("sqlite3_value_double");
    public static readonly delegate* unmanaged[Cdecl, SuppressGCTransition]<IntPtr, void> ResultNull = (delegate* unmanaged[Cdecl, SuppressGCTransition]<IntPtr, void>)Export("sqlite3_result_null");
    public static readonly delegate* unmanaged[Cdecl, SuppressGCTransition]<IntPtr, byte*, int, IntPtr, void> ResultText = (delegate* unmanaged[Cdecl, SuppressGCTransition]<IntPtr, byte*, int, IntPtr, void>)Export("sqlite3_result_text");
    public static readonly delegate* unmanaged[Cdecl]<IntPtr, byte*, int, void> ResultError = (delegate* unmanaged[Cdecl]<IntPtr, byte*, int, void>)Export("sqlite3_result_error");
    // Statement stepping and column access for hot loops, without SafeHandle marshalling on every call.
    public static readonly delegate* unmanaged[Cdecl]<IntPtr, int> Step = (delegate* unmanaged[Cdecl]<IntPtr, int>)Export("sqlite3_step");
    public static readonly delegate* unmanaged[Cdecl]<IntPtr, int, IntPtr> ColumnValue = (delegate* unmanaged[Cdecl]<IntPtr, int, IntPtr>)Export("sqlite3_column_value");
    private static readonly delegate* unmanaged[Cdecl]<IntPtr, byte*, int, void*, int> FileControl = (delegate* unmanaged[Cdecl]<IntPtr, byte*, int, void*, int>)Export("sqlite3_file_control");
    private static readonly delegate* unmanaged[Cdecl]<IntPtr, byte*> ErrorMessagePointer = (delegate* unmanaged[Cdecl]<IntPtr, byte*>)Export("sqlite3_errmsg");

    // Variadic in C; called with fixed arguments, which only matches where variadic integers travel in the same
    // registers as fixed ones (everywhere but Apple's arm64 ABI).
    public static readonly delegate* unmanaged[Cdecl]<int, IntPtr, int, int> TestControl =
        OperatingSystem.IsMacOS() && RuntimeInformation.ProcessArchitecture == Architecture.Arm64 || !NativeLibrary.TryGetExport(Library, "sqlite3_test_control", out var testControl)
            ? null
            : (delegate* unmanaged[Cdecl]<int, IntPtr, int, int>)testControl;

    /// <summary>
    /// Asks the VFS to fsync the file that a write transaction of this connection is filling (the main database in
    /// rollback-journal mode, the WAL file in WAL mode), through SQLite's own file handle: opening and closing the
    /// file ourselves would drop the process's POSIX locks on it. Used by <see cref="SqliteBackgroundSync"/>.
    /// Returns SQLite's result code.
    /// </summary>
    public static int SyncTransactionFile(IntPtr db, bool walMode)
    {
        const int filePointer = 7;     // SQLITE_FCNTL_FILE_POINTER
        const int journalPointer = 28; // SQLITE_FCNTL_JOURNAL_POINTER: the WAL file in WAL mode
        const int syncNormal = 2;      // SQLITE_SYNC_NORMAL
        var main = "main\0"u8;
        void* file = null;
        int rc;
        fixed (byte* zName = main)
        {
            rc = FileControl(db, zName, walMode ? journalPointer : filePointer, &file);
        }

        if (rc != 0 || file == null)
        {
            return rc;
        }

        // sqlite3_file starts with its io_methods; xSync is the sixth slot after iVersion (padded to a pointer).
        var methods = *(void***)file;
        if (methods == null)
        {
            return 0; // not open (a WAL file before its first write)
        }

        var sync = (delegate* unmanaged[Cdecl]<void*, int, int>)methods[5];
        return sync(file, syncNormal);
    }

    public static string ErrorMessage(IntPtr db) => Marshal.PtrToStringUTF8((IntPtr)ErrorMessagePointer(db)) ?? "unknown error";

    private static IntPtr Load()
    {
        Batteries_V2.Init();
        return NativeLibrary.Load("e_sqlite3", typeof(raw).Assembly, null);
    }

    private static IntPtr Export(string name) => NativeLibrary.GetExport(Library, name);
}

namespace DbMigration.MySql.Protocol;

/// <summary>Client/server capability flags (protocol docs: "Capability Flags").</summary>
[Flags]
internal enum Capabilities : uint
{
    None = 0,
    LongPassword = 1,
    FoundRows = 1 << 1,
    LongFlag = 1 << 2,
    ConnectWithDb = 1 << 3,
    LocalFiles = 1 << 7,
    Protocol41 = 1 << 9,
    Ssl = 1 << 11,
    Transactions = 1 << 13,
    SecureConnection = 1 << 15,
    MultiStatements = 1 << 16,
    MultiResults = 1 << 17,
    PsMultiResults = 1 << 18,
    PluginAuth = 1 << 19,
    ConnectAttrs = 1 << 20,
    PluginAuthLenencClientData = 1 << 21,
    SessionTrack = 1 << 23,
    DeprecateEof = 1 << 24,
}

/// <summary>Server status flags carried by OK and EOF packets.</summary>
[Flags]
internal enum ServerStatus : ushort
{
    None = 0,
    InTransaction = 1,
    AutoCommit = 2,
    MoreResultsExist = 8,
    NoBackslashEscapes = 512,
}

/// <summary>Column types of the text protocol's column definitions.</summary>
internal enum ColumnType : byte
{
    Decimal = 0,
    Tiny = 1,
    Short = 2,
    Long = 3,
    Float = 4,
    Double = 5,
    Null = 6,
    Timestamp = 7,
    LongLong = 8,
    Int24 = 9,
    Date = 10,
    Time = 11,
    DateTime = 12,
    Year = 13,
    NewDate = 14,
    VarChar = 15,
    Bit = 16,
    Timestamp2 = 17,
    DateTime2 = 18,
    Time2 = 19,
    Json = 245,
    NewDecimal = 246,
    Enum = 247,
    Set = 248,
    TinyBlob = 249,
    MediumBlob = 250,
    LongBlob = 251,
    Blob = 252,
    VarString = 253,
    String = 254,
    Geometry = 255,
}

[Flags]
internal enum ColumnFlags : ushort
{
    None = 0,
    NotNull = 1,
    PrimaryKey = 2,
    UniqueKey = 4,
    MultipleKey = 8,
    Blob = 16,
    Unsigned = 32,
    ZeroFill = 64,
    Binary = 128,
    Enum = 256,
    AutoIncrement = 512,
    Timestamp = 1024,
    Set = 2048,
}

internal static class CommandCode
{
    public const byte Quit = 0x01;
    public const byte InitDb = 0x02;
    public const byte Query = 0x03;
    public const byte Ping = 0x0E;
    public const byte ResetConnection = 0x1F;
}

/// <summary>Collation ids we recognise, to pick the encoding of a column's text.</summary>
internal static class CharacterSets
{
    public const byte Utf8Mb4GeneralCi = 45;
    public const int Binary = 63;

    private static readonly HashSet<int> Latin1 = [5, 8, 15, 31, 47, 48, 49, 94];

    /// <summary>MySQL's "latin1" is Windows-1252; .NET's Latin1 encoding covers the same byte range one to one.</summary>
    public static System.Text.Encoding ForCollation(int collation) =>
        Latin1.Contains(collation) ? System.Text.Encoding.Latin1 : System.Text.Encoding.UTF8;
}

namespace DbMigration.MySql.Protocol;

/// <summary>The parsed, immutable form of a connection string; also the pool key.</summary>
internal sealed record ConnectionSettings
{
    public required string Server { get; init; }

    public required int Port { get; init; }

    public required string Database { get; init; }

    public required string User { get; init; }

    public required string Password { get; init; }

    public required MySqlSslMode SslMode { get; init; }

    public required string SslCa { get; init; }

    public required TimeSpan ConnectTimeout { get; init; }

    public required int DefaultCommandTimeout { get; init; }

    public required bool Pooling { get; init; }

    public required int MaximumPoolSize { get; init; }

    public required MySqlZeroDateTimeBehavior ZeroDateTimeBehavior { get; init; }

    public required bool TreatTinyAsBoolean { get; init; }

    public required bool AllowPublicKeyRetrieval { get; init; }

    public required string ServerRsaPublicKeyFile { get; init; }

    public bool IsUnixSocket => Server.StartsWith('/') || Server.StartsWith("./", StringComparison.Ordinal);

    public static ConnectionSettings Parse(string connectionString)
    {
        var builder = new MySqlConnectionStringBuilder(connectionString);
        try
        {
            return new ConnectionSettings
            {
                Server = builder.Server,
                Port = checked((int)builder.Port),
                Database = builder.Database,
                User = builder.UserID,
                Password = builder.Password,
                SslMode = builder.SslMode,
                SslCa = builder.SslCa,
                ConnectTimeout = TimeSpan.FromSeconds(Math.Max(1, builder.ConnectionTimeout)),
                DefaultCommandTimeout = checked((int)builder.DefaultCommandTimeout),
                Pooling = builder.Pooling,
                MaximumPoolSize = Math.Max(1, checked((int)builder.MaximumPoolSize)),
                ZeroDateTimeBehavior = builder.ZeroDateTimeBehavior,
                TreatTinyAsBoolean = builder.TreatTinyAsBoolean,
                AllowPublicKeyRetrieval = builder.AllowPublicKeyRetrieval,
                ServerRsaPublicKeyFile = builder.ServerRsaPublicKeyFile,
            };
        }
        catch (Exception ex) when (ex is FormatException or OverflowException or ArgumentException)
        {
            throw new ArgumentException("The MySQL connection string has an invalid value: " + ex.Message, nameof(connectionString), ex);
        }
    }
}

using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace DbMigration.MySql.Protocol;

/// <summary>
/// One physical connection: connect, TLS, authentication, commands and the low-level result stream.
/// Not thread-safe; a MySqlConnection owns one at a time.
/// </summary>
internal sealed class ServerSession : IDisposable
{
    private const int MaxPacketSize = 1 << 30;
    private static readonly Capabilities Wanted =
        Capabilities.LongPassword | Capabilities.FoundRows | Capabilities.LongFlag | Capabilities.LocalFiles |
        Capabilities.Protocol41 | Capabilities.Transactions | Capabilities.SecureConnection | Capabilities.MultiStatements |
        Capabilities.MultiResults | Capabilities.PsMultiResults | Capabilities.PluginAuth | Capabilities.PluginAuthLenencClientData |
        Capabilities.DeprecateEof;

    private readonly PayloadWriter _writer = new(1024);
    private PacketChannel _channel = null!;
    private Socket? _socket;

    private ServerSession(ConnectionSettings settings) => Settings = settings;

    public ConnectionSettings Settings { get; }

    public uint ConnectionId { get; private set; }

    public string ServerVersion { get; private set; } = string.Empty;

    public bool IsMariaDb => ServerVersion.Contains("MariaDB", StringComparison.OrdinalIgnoreCase);

    public Capabilities Capabilities { get; private set; }

    public ServerStatus Status { get; set; }

    public bool DeprecateEof => (Capabilities & Capabilities.DeprecateEof) != 0;

    public bool NoBackslashEscapes => (Status & ServerStatus.NoBackslashEscapes) != 0;

    public bool IsTls => _channel.IsTls;

    /// <summary>Set when a protocol or I/O error leaves the session unusable; the pool drops it.</summary>
    public bool IsBroken { get; set; }

    /// <summary>The database in use (changes with COM_INIT_DB).</summary>
    public string CurrentDatabase { get; set; } = string.Empty;

    /// <summary>When the session was last returned to the pool.</summary>
    public DateTime ReturnedUtc { get; set; }

    /// <summary>The stream a LOAD DATA LOCAL INFILE may read, keyed by the exact file name offered.</summary>
    public (string Name, Func<PacketChannel, bool, CancellationToken, ValueTask> Send)? OfferedFile { get; set; }

    public PacketChannel Channel => _channel;

    public static async ValueTask<ServerSession> ConnectAsync(ConnectionSettings settings, bool ioAsync, CancellationToken cancellationToken)
    {
        var session = new ServerSession(settings);
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(settings.ConnectTimeout);
            try
            {
                await session.OpenSocketAsync(ioAsync, timeout.Token).ConfigureAwait(false);
                await session.HandshakeAsync(ioAsync, timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
            {
                throw new MySqlException($"Timed out after {settings.ConnectTimeout.TotalSeconds:0.#} s connecting to {Describe(settings)}.", MySqlClientError.ConnectTimeout, "08001", ex);
            }
            catch (MySqlException ex) when (ex.Number == MySqlClientError.ServerLost && !cancellationToken.IsCancellationRequested
                && (timeout.IsCancellationRequested || ex.InnerException?.InnerException is SocketException { SocketErrorCode: SocketError.TimedOut }))
            {
                throw new MySqlException($"Timed out after {settings.ConnectTimeout.TotalSeconds:0.#} s connecting to {Describe(settings)}.", MySqlClientError.ConnectTimeout, "08001", ex);
            }

            session.CurrentDatabase = settings.Database;
            session._socket!.ReceiveTimeout = 0;
            return session;
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    private static string Describe(ConnectionSettings settings) => settings.IsUnixSocket ? settings.Server : $"{settings.Server}:{settings.Port}";

    private async ValueTask OpenSocketAsync(bool ioAsync, CancellationToken cancellationToken)
    {
        try
        {
            if (Settings.IsUnixSocket)
            {
                _socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                var endpoint = new UnixDomainSocketEndPoint(Settings.Server);
                if (ioAsync)
                {
                    await _socket.ConnectAsync(endpoint, cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    _socket.Connect(endpoint);
                }
            }
            else
            {
                var addresses = IPAddress.TryParse(Settings.Server, out var ip)
                    ? [ip]
                    : ioAsync ? await Dns.GetHostAddressesAsync(Settings.Server, cancellationToken).ConfigureAwait(false) : Dns.GetHostAddresses(Settings.Server);
                SocketException? last = null;
                foreach (var address in addresses)
                {
                    var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                    try
                    {
                        if (ioAsync)
                        {
                            await socket.ConnectAsync(new IPEndPoint(address, Settings.Port), cancellationToken).ConfigureAwait(false);
                        }
                        else
                        {
                            // Sync connects honour the timeout through the async path.
                            socket.ConnectAsync(new IPEndPoint(address, Settings.Port), cancellationToken).AsTask().GetAwaiter().GetResult();
                        }

                        _socket = socket;
                        break;
                    }
                    catch (SocketException ex)
                    {
                        socket.Dispose();
                        last = ex;
                    }
                }

                if (_socket is null)
                {
                    throw last ?? new SocketException((int)SocketError.HostNotFound);
                }
            }
        }
        catch (SocketException ex)
        {
            throw ex.SocketErrorCode switch
            {
                SocketError.ConnectionRefused => new MySqlException($"Connection refused by {Describe(Settings)}: no MySQL/MariaDB server is listening there.", MySqlClientError.ConnectionRefused, "08001", ex),
                SocketError.HostNotFound or SocketError.NoData or SocketError.TryAgain => new MySqlException($"The host '{Settings.Server}' could not be resolved.", MySqlClientError.UnknownHost, "08001", ex),
                _ => new MySqlException($"Could not connect to {Describe(Settings)}: {ex.Message}", MySqlClientError.ConnectionRefused, "08001", ex),
            };
        }

        // Bounds sync reads during the handshake; cleared once connected.
        _socket!.ReceiveTimeout = (int)Settings.ConnectTimeout.TotalMilliseconds;
        _channel = new PacketChannel(new NetworkStream(_socket, ownsSocket: true));
    }

    private async ValueTask HandshakeAsync(bool ioAsync, CancellationToken cancellationToken)
    {
        _channel.ResetSequence();
        var payload = await _channel.ReadPayloadAsync(ioAsync, cancellationToken).ConfigureAwait(false);
        if (OkPacket.IsErr(payload.Span))
        {
            throw ErrPacket.ToException(payload.Span);
        }

        var handshake = ParseHandshake(payload.Span);
        ServerVersion = handshake.Version;
        ConnectionId = handshake.ConnectionId;
        Status = handshake.Status;

        var useTls = Settings.SslMode switch
        {
            MySqlSslMode.None => false,
            MySqlSslMode.Preferred => (handshake.Capabilities & Capabilities.Ssl) != 0,
            _ => (handshake.Capabilities & Capabilities.Ssl) != 0
                ? true
                : throw new MySqlException($"SslMode={Settings.SslMode} requires TLS, but the server at {Describe(Settings)} does not offer it.", MySqlClientError.SslConnectionError, "08001"),
        };

        Capabilities = handshake.Capabilities & Wanted;
        if (Settings.Database.Length > 0)
        {
            Capabilities |= Capabilities.ConnectWithDb;
        }

        if (useTls)
        {
            Capabilities |= Capabilities.Ssl;
            _writer.Clear();
            WriteClientPrefix();
            await _channel.WritePayloadAsync(_writer.Memory, ioAsync, cancellationToken).ConfigureAwait(false);
            try
            {
                await _channel.UpgradeToTlsAsync(TlsOptions(), ioAsync, cancellationToken).ConfigureAwait(false);
            }
            catch (AuthenticationException ex)
            {
                throw new MySqlException($"TLS negotiation with {Describe(Settings)} failed: {ex.Message}", MySqlClientError.SslConnectionError, "08001", ex);
            }
        }

        var plugin = AuthenticationPlugins.IsSupported(handshake.AuthPlugin) && handshake.AuthPlugin != AuthenticationPlugins.ClearPassword
            ? handshake.AuthPlugin
            : AuthenticationPlugins.NativePassword;
        var scramble = handshake.Scramble;
        _writer.Clear();
        WriteClientPrefix();
        _writer.WriteNullTerminatedString(Settings.User);
        _writer.WriteLengthEncodedBytes(InitialResponse(plugin, scramble));
        if (Settings.Database.Length > 0)
        {
            _writer.WriteNullTerminatedString(Settings.Database);
        }

        _writer.WriteNullTerminatedString(plugin);
        await _channel.WritePayloadAsync(_writer.Memory, ioAsync, cancellationToken).ConfigureAwait(false);
        await CompleteAuthenticationAsync(plugin, scramble, ioAsync, cancellationToken).ConfigureAwait(false);
    }

    private void WriteClientPrefix()
    {
        _writer.WriteUInt32((uint)Capabilities);
        _writer.WriteUInt32(MaxPacketSize);
        _writer.WriteByte(CharacterSets.Utf8Mb4GeneralCi);
        _writer.WriteZeros(23);
    }

    private byte[] InitialResponse(string plugin, byte[] scramble) => plugin switch
    {
        AuthenticationPlugins.CachingSha2Password => AuthenticationPlugins.CachingSha2Scramble(Settings.Password, scramble),
        _ => AuthenticationPlugins.NativePasswordScramble(Settings.Password, scramble),
    };

    private async ValueTask CompleteAuthenticationAsync(string plugin, byte[] scramble, bool ioAsync, CancellationToken cancellationToken)
    {
        while (true)
        {
            var payload = await _channel.ReadPayloadAsync(ioAsync, cancellationToken).ConfigureAwait(false);
            var span = payload.Span;
            switch (span[0])
            {
                case 0x00:
                    Status = OkPacket.Parse(span).Status;
                    return;
                case 0xFF:
                    var error = ErrPacket.ToException(span);
                    var hint = _channel.IsTls ? string.Empty : " If the account requires TLS, connect with SslMode=Required.";
                    throw error.Number is 1045 or 1698
                        ? new MySqlException($"Authentication failed for user '{Settings.User}' at {Describe(Settings)}: {error.Message}.{hint}", error.Number, error.SqlState, error)
                        : error;
                case 0xFE:
                    {
                        var reader = new PayloadReader(span) { Offset = 1 };
                        plugin = reader.ReadNullTerminatedString();
                        var data = reader.ReadToEnd();
                        scramble = (data.Length > 0 && data[^1] == 0 ? data[..^1] : data).ToArray();
                        var response = plugin switch
                        {
                            AuthenticationPlugins.NativePassword => AuthenticationPlugins.NativePasswordScramble(Settings.Password, scramble),
                            AuthenticationPlugins.CachingSha2Password => AuthenticationPlugins.CachingSha2Scramble(Settings.Password, scramble),
                            AuthenticationPlugins.ClearPassword when IsSecureTransport => AuthenticationPlugins.ClearPasswordResponse(Settings.Password),
                            AuthenticationPlugins.ClearPassword => throw new MySqlException(
                                "The server asked for mysql_clear_password over an unencrypted connection; the password was not sent. Use SslMode=Required.",
                                MySqlClientError.InsecureAuthRefused, "28000"),
                            _ => throw new MySqlException(
                                $"The server requires the authentication plugin '{plugin}', which DbMigration does not support (supported: mysql_native_password, caching_sha2_password, mysql_clear_password).",
                                MySqlClientError.AuthPluginNotSupported, "28000"),
                        };
                        await _channel.WritePayloadAsync(response, ioAsync, cancellationToken).ConfigureAwait(false);
                        break;
                    }

                case 0x01 when plugin == AuthenticationPlugins.CachingSha2Password:
                    if (span.Length >= 2 && span[1] == 0x03)
                    {
                        break; // fast authentication succeeded; an OK packet follows
                    }

                    if (span.Length >= 2 && span[1] == 0x04)
                    {
                        await FullSha2AuthenticationAsync(scramble, ioAsync, cancellationToken).ConfigureAwait(false);
                        break;
                    }

                    throw new MySqlException("Unexpected caching_sha2_password message from the server.", MySqlClientError.ProtocolError);
                default:
                    throw new MySqlException($"Unexpected packet 0x{span[0]:X2} during authentication with plugin '{plugin}'.", MySqlClientError.ProtocolError);
            }
        }
    }

    private bool IsSecureTransport => _channel.IsTls || Settings.IsUnixSocket;

    private async ValueTask FullSha2AuthenticationAsync(byte[] scramble, bool ioAsync, CancellationToken cancellationToken)
    {
        if (IsSecureTransport)
        {
            await _channel.WritePayloadAsync(AuthenticationPlugins.ClearPasswordResponse(Settings.Password), ioAsync, cancellationToken).ConfigureAwait(false);
            return;
        }

        string pem;
        if (Settings.ServerRsaPublicKeyFile.Length > 0)
        {
            pem = await File.ReadAllTextAsync(Settings.ServerRsaPublicKeyFile, cancellationToken).ConfigureAwait(false);
        }
        else if (Settings.AllowPublicKeyRetrieval)
        {
            await _channel.WritePayloadAsync(new byte[] { 0x02 }, ioAsync, cancellationToken).ConfigureAwait(false);
            var key = await _channel.ReadPayloadAsync(ioAsync, cancellationToken).ConfigureAwait(false);
            if (key.Length < 2 || key.Span[0] != 0x01)
            {
                throw new MySqlException("The server did not send its RSA public key.", MySqlClientError.ProtocolError);
            }

            pem = Encoding.ASCII.GetString(key.Span[1..]);
        }
        else
        {
            throw new MySqlException(
                "caching_sha2_password needs full authentication, which requires TLS (SslMode=Required), a Unix socket, Server RSA Public Key File, or Allow Public Key Retrieval=true.",
                MySqlClientError.InsecureAuthRefused, "28000");
        }

        var encrypted = AuthenticationPlugins.RsaEncryptPassword(Settings.Password, scramble, pem);
        await _channel.WritePayloadAsync(encrypted, ioAsync, cancellationToken).ConfigureAwait(false);
    }

    private SslClientAuthenticationOptions TlsOptions()
    {
        X509Certificate2Collection? trusted = null;
        if (Settings.SslCa.Length > 0)
        {
            trusted = [];
            trusted.ImportFromPemFile(Settings.SslCa);
        }

        return new SslClientAuthenticationOptions
        {
            TargetHost = Settings.IsUnixSocket ? "localhost" : Settings.Server,
            EnabledSslProtocols = SslProtocols.None,
            RemoteCertificateValidationCallback = (_, certificate, chain, errors) => ValidateCertificate(certificate, errors, trusted),
        };
    }

    private bool ValidateCertificate(X509Certificate? certificate, SslPolicyErrors errors, X509Certificate2Collection? trusted)
    {
        if (Settings.SslMode is MySqlSslMode.Preferred or MySqlSslMode.Required)
        {
            return true;
        }

        if (certificate is null)
        {
            return false;
        }

        var chainOk = (errors & SslPolicyErrors.RemoteCertificateChainErrors) == 0;
        if (!chainOk && trusted is not null)
        {
            using var chain = new X509Chain();
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.AddRange(trusted);
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            chainOk = chain.Build(new X509Certificate2(certificate));
        }

        var nameOk = (errors & SslPolicyErrors.RemoteCertificateNameMismatch) == 0;
        return Settings.SslMode == MySqlSslMode.VerifyCA ? chainOk : chainOk && nameOk;
    }

    private readonly record struct Handshake(string Version, uint ConnectionId, byte[] Scramble, Capabilities Capabilities, ServerStatus Status, string AuthPlugin);

    private static Handshake ParseHandshake(ReadOnlySpan<byte> payload)
    {
        var reader = new PayloadReader(payload);
        var protocol = reader.ReadByte();
        if (protocol != 10)
        {
            throw new MySqlException($"Unsupported protocol version {protocol}; DbMigration speaks handshake v10.", MySqlClientError.ProtocolError);
        }

        var version = reader.ReadNullTerminatedString();
        var connectionId = reader.ReadUInt32();
        var part1 = reader.ReadBytes(8).ToArray();
        reader.ReadByte();
        var capabilities = (Capabilities)reader.ReadUInt16();
        var status = ServerStatus.None;
        var pluginDataLength = 0;
        byte[] part2 = [];
        var plugin = AuthenticationPlugins.NativePassword;
        if (reader.Remaining > 0)
        {
            reader.ReadByte(); // server default collation
            status = (ServerStatus)reader.ReadUInt16();
            capabilities |= (Capabilities)((uint)reader.ReadUInt16() << 16);
            pluginDataLength = reader.ReadByte();
            reader.ReadBytes(10); // reserved (MariaDB keeps its extended capabilities here)
            if ((capabilities & Capabilities.SecureConnection) != 0)
            {
                var length = Math.Max(13, pluginDataLength - 8);
                part2 = reader.ReadBytes(Math.Min(length, reader.Remaining)).ToArray();
                if (part2.Length > 0 && part2[^1] == 0)
                {
                    part2 = part2[..^1];
                }
            }

            if ((capabilities & Capabilities.PluginAuth) != 0 && reader.Remaining > 0)
            {
                plugin = reader.ReadNullTerminatedString();
            }
        }

        if ((capabilities & Capabilities.Protocol41) == 0)
        {
            throw new MySqlException("The server does not speak protocol 4.1; DbMigration needs MySQL 4.1 or later.", MySqlClientError.ProtocolError);
        }

        return new Handshake(version, connectionId, [.. part1, .. part2], capabilities, status, plugin);
    }

    /// <summary>Sends a command with a text argument (COM_QUERY, COM_INIT_DB).</summary>
    public ValueTask SendCommandAsync(byte command, string argument, bool ioAsync, CancellationToken cancellationToken)
    {
        _channel.ResetSequence();
        var size = Encoding.UTF8.GetByteCount(argument);
        var payload = new byte[1 + size];
        payload[0] = command;
        Encoding.UTF8.GetBytes(argument, payload.AsSpan(1));
        return _channel.WritePayloadAsync(payload, ioAsync, cancellationToken);
    }

    /// <summary>Sends a command and expects a single OK packet back (COM_PING, COM_INIT_DB, COM_RESET_CONNECTION).</summary>
    public async ValueTask<OkPacket> ExecuteSimpleAsync(byte command, string argument, bool ioAsync, CancellationToken cancellationToken)
    {
        await SendCommandAsync(command, argument, ioAsync, cancellationToken).ConfigureAwait(false);
        var payload = await _channel.ReadPayloadAsync(ioAsync, cancellationToken).ConfigureAwait(false);
        if (OkPacket.IsErr(payload.Span))
        {
            throw ErrPacket.ToException(payload.Span);
        }

        var ok = OkPacket.Parse(payload.Span);
        Status = ok.Status;
        return ok;
    }

    public ValueTask<ReadOnlyMemory<byte>> ReadPayloadAsync(bool ioAsync, CancellationToken cancellationToken) =>
        _channel.ReadPayloadAsync(ioAsync, cancellationToken);

    /// <summary>
    /// Whether an idle pooled session can still be used. Idle, the socket has nothing to read; a readable one was
    /// closed by the server (KILL, a restart, wait_timeout, a restore elsewhere that dropped the database's sessions)
    /// or holds something the server sent unasked, such as a TLS record. A ping then decides; it costs a round trip
    /// only in that case.
    /// </summary>
    public async ValueTask<bool> SurvivedIdleAsync(bool ioAsync, CancellationToken cancellationToken)
    {
        if (IsBroken || _socket is null)
        {
            return false;
        }

        try
        {
            if (!_socket.Poll(0, SelectMode.SelectRead))
            {
                return true;
            }

            await ExecuteSimpleAsync(CommandCode.Ping, string.Empty, ioAsync, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (Exception ex) when (ex is MySqlException or IOException or ObjectDisposedException or SocketException)
        {
            IsBroken = true;
            return false;
        }
    }

    /// <summary>Sends COM_QUIT and closes the socket; never throws.</summary>
    public void Quit()
    {
        try
        {
            if (!IsBroken && _channel is not null)
            {
                _channel.ResetSequence();
                _channel.WritePacketAsync(new byte[] { CommandCode.Quit }, ioAsync: false, CancellationToken.None).GetAwaiter().GetResult();
            }
        }
        catch (Exception ex) when (ex is MySqlException or IOException or ObjectDisposedException or SocketException)
        {
        }

        Dispose();
    }

    public void Dispose()
    {
        _channel?.Dispose();
        _socket?.Dispose();
    }
}

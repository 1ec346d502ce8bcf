using System.Net;
using System.Net.Sockets;
using System.Text;
using DbMigration.MySql;

namespace DbMigration.Tests.MySql;

/// <summary>
/// A server that asks for the password in clear over plain TCP must not get it. No real server here does that,
/// so a loopback peer speaks just enough protocol: a v10 greeting, then an auth switch to mysql_clear_password.
/// </summary>
public sealed class HostileServerTests
{
    [Fact]
    public async Task The_clear_password_plugin_is_refused_without_tls_and_the_password_never_leaves()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        const string password = "Top-Secret-Password-42";
        var received = new MemoryStream();

        var peer = Task.Run(async () =>
        {
            using var client = await listener.AcceptTcpClientAsync();
            var stream = client.GetStream();
            await WritePacketAsync(stream, 0, Greeting());
            await ReadPacketAsync(stream, received);
            await WritePacketAsync(stream, 2, [0xFE, .. Encoding.ASCII.GetBytes("mysql_clear_password"), 0]);
            try
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                while (await ReadPacketAsync(stream, received, timeout.Token))
                {
                }
            }
            catch (Exception ex) when (ex is IOException or OperationCanceledException)
            {
            }
        });

        var connection = new MySqlConnection($"Server=127.0.0.1;Port={port};User ID=app;Password={password};SslMode=None;Pooling=false");
        var ex = await Assert.ThrowsAsync<MySqlException>(() => connection.OpenAsync());
        await peer;

        Assert.Equal(MySqlClientError.InsecureAuthRefused, ex.Number);
        Assert.Contains("SslMode=Required", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(password, Encoding.UTF8.GetString(received.ToArray()), StringComparison.Ordinal);
        Assert.True(received.Length > 0, "the peer should have received the handshake response");
    }

    private static byte[] Greeting()
    {
        var payload = new List<byte> { 10 };
        payload.AddRange(Encoding.ASCII.GetBytes("10.11.0-Hostile"));
        payload.Add(0);
        payload.AddRange(BitConverter.GetBytes(7u));
        payload.AddRange(Encoding.ASCII.GetBytes("abcdefgh"));
        payload.Add(0);
        const uint capabilities = (1u << 9) | (1u << 15) | (1u << 19) | 1u;
        payload.AddRange(BitConverter.GetBytes((ushort)(capabilities & 0xFFFF)));
        payload.Add(45);
        payload.AddRange(BitConverter.GetBytes((ushort)2));
        payload.AddRange(BitConverter.GetBytes((ushort)(capabilities >> 16)));
        payload.Add(21);
        payload.AddRange(new byte[10]);
        payload.AddRange(Encoding.ASCII.GetBytes("ijklmnopqrst"));
        payload.Add(0);
        payload.AddRange(Encoding.ASCII.GetBytes("mysql_native_password"));
        payload.Add(0);
        return [.. payload];
    }

    private static async Task WritePacketAsync(NetworkStream stream, byte sequence, byte[] payload)
    {
        await stream.WriteAsync(new byte[] { (byte)payload.Length, (byte)(payload.Length >> 8), (byte)(payload.Length >> 16), sequence });
        await stream.WriteAsync(payload);
    }

    private static async Task<bool> ReadPacketAsync(NetworkStream stream, MemoryStream sink, CancellationToken cancellationToken = default)
    {
        var header = new byte[4];
        var read = await stream.ReadAtLeastAsync(header, 4, throwOnEndOfStream: false, cancellationToken);
        if (read < 4)
        {
            return false;
        }

        var payload = new byte[header[0] | header[1] << 8 | header[2] << 16];
        await stream.ReadExactlyAsync(payload, cancellationToken);
        sink.Write(payload);
        return true;
    }
}

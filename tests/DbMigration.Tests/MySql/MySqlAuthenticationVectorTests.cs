using DbMigration.MySql.Protocol;
using DbMigration.Tests.Fixtures;

namespace DbMigration.Tests.MySql;

/// <summary>
/// No MySQL 8 server exists here, so the caching_sha2_password scramble and RSA step are checked against values
/// computed independently with the openssl CLI.
/// </summary>
public sealed class MySqlAuthenticationVectorTests : IDisposable
{
    private static readonly byte[] Scramble = Convert.FromHexString("3a1f5c7e09b2d4461188aa0c5e7f3319b0d2e6a1");
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private async Task<byte[]> OpenSslDigestAsync(string algorithm, byte[] input)
    {
        var file = _dir.File(Guid.NewGuid().ToString("N"));
        await File.WriteAllBytesAsync(file, input);
        var output = file + ".out";
        await ProcessRunner.RunCheckedAsync("openssl", ["dgst", "-" + algorithm, "-binary", "-out", output, file], TimeSpan.FromSeconds(30));
        return await File.ReadAllBytesAsync(output);
    }

    private static byte[] Xor(byte[] a, byte[] b) => a.Select((x, i) => (byte)(x ^ b[i])).ToArray();

    [Theory]
    [InlineData("s3cret")]
    [InlineData("pässwörd-🔑")]
    public async Task The_caching_sha2_scramble_matches_openssl(string password)
    {
        var stage1 = await OpenSslDigestAsync("sha256", System.Text.Encoding.UTF8.GetBytes(password));
        var stage2 = await OpenSslDigestAsync("sha256", stage1);
        var mix = await OpenSslDigestAsync("sha256", [.. stage2, .. Scramble]);

        Assert.Equal(Xor(stage1, mix), AuthenticationPlugins.CachingSha2Scramble(password, Scramble));
    }

    [Fact]
    public async Task The_native_password_scramble_matches_openssl()
    {
        const string password = "s3cret";
        var stage1 = await OpenSslDigestAsync("sha1", System.Text.Encoding.UTF8.GetBytes(password));
        var stage2 = await OpenSslDigestAsync("sha1", stage1);
        var mix = await OpenSslDigestAsync("sha1", [.. Scramble, .. stage2]);

        Assert.Equal(Xor(stage1, mix), AuthenticationPlugins.NativePasswordScramble(password, Scramble));
    }

    [Fact]
    public void An_empty_password_sends_an_empty_response()
    {
        Assert.Empty(AuthenticationPlugins.NativePasswordScramble(string.Empty, Scramble));
        Assert.Empty(AuthenticationPlugins.CachingSha2Scramble(string.Empty, Scramble));
    }

    [Fact]
    public async Task The_RSA_step_decrypts_with_openssl_to_the_password_xored_with_the_scramble()
    {
        const string password = "correct horse battery staple";
        var key = _dir.File("key.pem");
        var publicKey = _dir.File("pub.pem");
        await ProcessRunner.RunCheckedAsync("openssl", ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key], TimeSpan.FromSeconds(60));
        await ProcessRunner.RunCheckedAsync("openssl", ["pkey", "-in", key, "-pubout", "-out", publicKey], TimeSpan.FromSeconds(30));

        var pem = await File.ReadAllTextAsync(publicKey);
        var cipher = AuthenticationPlugins.RsaEncryptPassword(password, Scramble, pem);
        var cipherFile = _dir.File("cipher.bin");
        var plainFile = _dir.File("plain.bin");
        await File.WriteAllBytesAsync(cipherFile, cipher);
        await ProcessRunner.RunCheckedAsync("openssl", ["pkeyutl", "-decrypt", "-inkey", key, "-in", cipherFile, "-out", plainFile, "-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha1"], TimeSpan.FromSeconds(30));

        var expected = System.Text.Encoding.UTF8.GetBytes(password + "\0").Select((b, i) => (byte)(b ^ Scramble[i % Scramble.Length])).ToArray();
        Assert.Equal(256, cipher.Length);
        Assert.Equal(expected, await File.ReadAllBytesAsync(plainFile));
    }
}

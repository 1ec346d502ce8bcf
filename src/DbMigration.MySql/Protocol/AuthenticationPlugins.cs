using System.Security.Cryptography;
using System.Text;

namespace DbMigration.MySql.Protocol;

/// <summary>
/// Authentication responses for the plugins DbMigration speaks. Formulas from the protocol documentation:
/// mysql_native_password = SHA1(pw) XOR SHA1(scramble + SHA1(SHA1(pw)));
/// caching_sha2_password = SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) + scramble);
/// the RSA step encrypts (pw + NUL) XOR scramble with RSA-OAEP (SHA-1).
/// </summary>
internal static class AuthenticationPlugins
{
    public const string NativePassword = "mysql_native_password";
    public const string CachingSha2Password = "caching_sha2_password";
    public const string ClearPassword = "mysql_clear_password";

    public static bool IsSupported(string plugin) => plugin is NativePassword or CachingSha2Password or ClearPassword;

    public static byte[] NativePasswordScramble(string password, ReadOnlySpan<byte> scramble)
    {
        if (password.Length == 0)
        {
            return [];
        }

        var stage1 = SHA1.HashData(Encoding.UTF8.GetBytes(password));
        var stage2 = SHA1.HashData(stage1);
        var mix = SHA1.HashData([.. scramble[..20], .. stage2]);
        for (var i = 0; i < mix.Length; i++)
        {
            mix[i] ^= stage1[i];
        }

        return mix;
    }

    public static byte[] CachingSha2Scramble(string password, ReadOnlySpan<byte> scramble)
    {
        if (password.Length == 0)
        {
            return [];
        }

        var stage1 = SHA256.HashData(Encoding.UTF8.GetBytes(password));
        var stage2 = SHA256.HashData(stage1);
        var mix = SHA256.HashData([.. stage2, .. scramble[..20]]);
        for (var i = 0; i < mix.Length; i++)
        {
            mix[i] ^= stage1[i];
        }

        return mix;
    }

    /// <summary>The password, NUL-terminated, XORed with the scramble repeated: what RSA then encrypts.</summary>
    public static byte[] XorPasswordWithScramble(string password, ReadOnlySpan<byte> scramble)
    {
        var bytes = Encoding.UTF8.GetBytes(password + "\0");
        for (var i = 0; i < bytes.Length; i++)
        {
            bytes[i] ^= scramble[i % scramble.Length];
        }

        return bytes;
    }

    public static byte[] RsaEncryptPassword(string password, ReadOnlySpan<byte> scramble, string publicKeyPem)
    {
        using var rsa = RSA.Create();
        rsa.ImportFromPem(publicKeyPem);
        return rsa.Encrypt(XorPasswordWithScramble(password, scramble[..20]), RSAEncryptionPadding.OaepSHA1);
    }

    public static byte[] ClearPasswordResponse(string password) => Encoding.UTF8.GetBytes(password + "\0");
}

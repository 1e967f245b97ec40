import pytest
import torch
import torchaudio

from jepa_lightning.tokenizers import InputSpec, LogMelPatchTokenizer, grid_coords, sincos_embedding

SPEC = InputSpec(modality="audio", channels=1, sample_rate=16000)


def waveform(batch: int = 2, samples: int = 16000, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, 1, samples, generator=torch.Generator().manual_seed(seed))


def test_front_end_matches_torchaudio_log_mel_with_instance_norm():
    tokenizer = LogMelPatchTokenizer(SPEC, embed_dim=32)
    x = waveform()
    mel = torchaudio.transforms.MelSpectrogram(sample_rate=16000, n_fft=1024, hop_length=160, n_mels=128)(x)
    assert mel.shape[-1] == 101  # centred frames: 16000 // 160 + 1
    logmel = torch.log(mel[..., :96] + 1e-6)
    mean = logmel.mean(dim=(-2, -1), keepdim=True)
    std = logmel.std(dim=(-2, -1), keepdim=True)
    expected = (logmel - mean) / (std + 1e-5)
    got = tokenizer.spectrogram(x)
    assert got.shape == (2, 1, 128, 96)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    per_sample = got.flatten(1)
    torch.testing.assert_close(per_sample.mean(1), torch.zeros(2), atol=1e-4, rtol=0)
    torch.testing.assert_close(per_sample.std(1), torch.ones(2), atol=1e-3, rtol=0)


def test_tokens_of_a_one_second_clip():
    tokenizer = LogMelPatchTokenizer(SPEC, embed_dim=32)
    tokens = tokenizer(waveform())
    # 128 mel bins / 16 = 8 frequency patches; 101 frames cropped to 96 = 6 time patches
    assert tokens.features.shape == (2, 48, 32)
    assert tokens.layout.kind == "grid"
    assert tokens.layout.shape == (8, 6)
    assert torch.equal(tokens.layout.coords, grid_coords((8, 6)))
    assert tokens.layout.num_tokens == 48
    assert tokens.positions.shape == (1, 48, 32)
    torch.testing.assert_close(tokens.positions, sincos_embedding(grid_coords((8, 6)), 32))


def test_features_are_patch_embeddings_of_the_spectrogram_in_row_major_order():
    tokenizer = LogMelPatchTokenizer(SPEC, embed_dim=8, n_mels=32, patch_size=(16, 8))
    x = waveform(batch=1, samples=8000)
    tokens = tokenizer(x)
    spec = tokenizer.spectrogram(x)[0, 0]  # (32, 48): 51 frames cropped to 48
    assert tokens.layout.shape == (2, 6)
    weight, bias = tokenizer.proj.weight[:, 0], tokenizer.proj.bias
    f, t = 1, 4  # token row-major index 1 * 6 + 4
    patch = spec[f * 16 : (f + 1) * 16, t * 8 : (t + 1) * 8]
    expected = (weight * patch).sum(dim=(-2, -1)) + bias
    torch.testing.assert_close(tokens.features[0, f * 6 + t], expected, rtol=1e-4, atol=1e-4)


def test_grid_follows_the_clip_length():
    tokenizer = LogMelPatchTokenizer(SPEC, embed_dim=32)
    short, long = tokenizer(waveform(samples=4000)), tokenizer(waveform(samples=32000))
    assert short.layout.shape == (8, 1)  # 26 frames -> 1 patch
    assert long.layout.shape == (8, 12)  # 201 frames -> 12 patches
    assert long.positions.shape == (1, 96, 32)


def test_custom_hop_length_and_gradients_flow():
    tokenizer = LogMelPatchTokenizer(SPEC, embed_dim=16, n_mels=64, hop_length=320)
    tokens = tokenizer(waveform())
    assert tokens.layout.shape == (4, 3)  # 51 frames -> 48
    tokens.features.sum().backward()
    assert tokenizer.proj.weight.grad is not None


def test_errors():
    with pytest.raises(ValueError, match="sample_rate"):
        LogMelPatchTokenizer(InputSpec(modality="audio"), embed_dim=32)
    with pytest.raises(ValueError, match="n_mels"):
        LogMelPatchTokenizer(SPEC, embed_dim=32, n_mels=100)
    with pytest.raises(ValueError, match="mono"):
        LogMelPatchTokenizer(InputSpec(modality="audio", channels=2, sample_rate=16000), embed_dim=32)
    tokenizer = LogMelPatchTokenizer(SPEC, embed_dim=32)
    with pytest.raises(ValueError, match=r"\(B, 1, T\)"):
        tokenizer(torch.randn(2, 16000))
    with pytest.raises(ValueError, match=r"\(B, 1, T\)"):
        tokenizer(torch.randn(2, 2, 16000))
    with pytest.raises(ValueError, match="fewer than one patch"):
        tokenizer(torch.randn(2, 1, 1600))  # 11 frames


def test_front_end_stays_float32_when_the_module_is_cast():
    tokenizer = LogMelPatchTokenizer(SPEC, embed_dim=32).to(torch.bfloat16)
    tokens = tokenizer(waveform())
    assert tokens.features.dtype == tokens.positions.dtype == torch.bfloat16
    assert tokenizer.spectrogram(waveform()).dtype == torch.float32


def tone(samples: int, amplitude: float = 0.5) -> torch.Tensor:
    return amplitude * torch.sin(2 * torch.pi * 440 * torch.arange(samples) / 16000)


def test_silence_db_marks_the_time_columns_below_the_clips_loudest_in_every_row():
    """1 s clips, a (8, 6) grid of 0.16 s columns: a tone for 0.5 s, then silence (zeros) or the tone 20 dB lower."""
    padded = torch.cat([tone(8000), torch.zeros(8000)])
    quieter = torch.cat([tone(8000), tone(8000, amplitude=0.05)])
    x = torch.stack([padded, quieter, tone(16000)])[:, None]
    assert LogMelPatchTokenizer(SPEC, embed_dim=32)(x).valid is None
    # column 3 (frames 48-63) holds the tone's end, column 4 starts past its last window
    columns = {
        30: [[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]],
        10: [[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]],
    }
    for silence_db, expected in columns.items():
        tokens = LogMelPatchTokenizer(SPEC, embed_dim=32, silence_db=silence_db)(x)
        grid = tokens.valid.view(3, 8, 6)  # row-major: every frequency row shares its column's verdict
        assert torch.equal(grid, torch.tensor(expected, dtype=torch.bool)[:, None].expand(-1, 8, -1))
    with pytest.raises(ValueError, match="silence_db"):
        LogMelPatchTokenizer(SPEC, embed_dim=32, silence_db=0)

//! Properties the architecture must have: a bidirectional encoder, a causal decoder, cached
//! steps equal to the full forward, padding and beam-grouping invariance.

mod common;

use candle_core::{DType, Device, IndexOp, Tensor};
use common::*;
use transduce::data::Batch;
use transduce::model::config::NormPlacement;
use transduce::search::greedy;

const PLACEMENTS: [NormPlacement; 2] = [NormPlacement::Pre, NormPlacement::Post];

#[test]
fn encoder_output_before_and_after_a_changed_token_changes() {
    for placement in PLACEMENTS {
        let m = model(&tiny_config(placement), DType::F32).model;
        let a = ids(&[&[5, 6, 7, 8, 9, 10, 2]]);
        let b = ids(&[&[5, 6, 7, 15, 9, 10, 2]]);
        let ma = m.encode(&a, &ones_mask(1, 7)).unwrap().states;
        let mb = m.encode(&b, &ones_mask(1, 7)).unwrap().states;
        for pos in [0, 1, 2, 4, 5, 6] {
            let d = max_diff(&ma.i((0, pos)).unwrap(), &mb.i((0, pos)).unwrap());
            assert!(d > 1e-4, "{placement:?}: position {pos} did not see token 3 (diff {d})");
        }
    }
}

#[test]
fn decoder_outputs_up_to_t_ignore_later_target_tokens() {
    for placement in PLACEMENTS {
        let m = model(&tiny_config(placement), DType::F32).model;
        let memory = m.encode(&ids(&[&[5, 6, 7, 2]]), &ones_mask(1, 4)).unwrap();
        let a = m.decode(&ids(&[&[1, 8, 9, 10, 11, 12, 13]]), &memory).unwrap();
        let b = m.decode(&ids(&[&[1, 8, 9, 10, 20, 4, 17]]), &memory).unwrap();
        // tokens after t = 3 differ
        let same = max_diff(&a.i((.., ..4)).unwrap(), &b.i((.., ..4)).unwrap());
        assert!(same <= 1e-6, "{placement:?}: positions <= 3 changed by {same}");
        let later = max_diff(&a.i((.., 4..)).unwrap(), &b.i((.., 4..)).unwrap());
        assert!(later > 1e-4, "{placement:?}: later positions should change, diff {later}");
    }
}

#[test]
fn cached_steps_equal_the_full_teacher_forced_forward() {
    let configs = PLACEMENTS.iter().flat_map(|&p| [tiny_config(p), tiny_config_untied(p)]);
    // f32 on the CPU steps through the per-step cache kernels; f64 through the tensor cache
    let cases =
        configs.flat_map(|c| [(c.clone(), false, DType::F32), (c.clone(), true, DType::F32), (c, true, DType::F64)]);
    for (config, prepared, dtype) in cases {
        let mut m = model(&config, dtype).model;
        if prepared {
            m.prepare_inference().unwrap();
        }
        // two sources of different lengths: the shorter is padded
        let src = ids(&[&[5, 6, 7, 8, 2], &[9, 10, 2, 0, 0]]);
        let mask = Tensor::new(&[[1u8, 1, 1, 1, 1], [1, 1, 1, 0, 0]], &Device::Cpu).unwrap();
        let memory = m.encode(&src, &mask).unwrap();
        let tgt = ids(&[&[1, 11, 12, 13, 14, 15], &[1, 16, 17, 4, 5, 6]]);
        let full = m.decode(&tgt, &memory).unwrap();
        let mut state = m.start(&memory, 1).unwrap();
        for t in 0..6 {
            let step = m.decode_step(&tgt.i((.., t)).unwrap().contiguous().unwrap(), &mut state).unwrap();
            let d = max_diff(&step, &full.i((.., t)).unwrap());
            let what = (config.norm_placement, config.positions, prepared, dtype);
            assert!(d <= 1e-5, "{what:?}: step {t} differs by {d}");
        }
        assert_eq!(state.step(), 6);
    }
}

#[test]
fn padded_batch_gives_the_logits_and_greedy_output_of_each_sentence_alone() {
    for placement in PLACEMENTS {
        let config = tiny_config(placement);
        let mut m = model(&config, DType::F32).model;
        m.prepare_inference().unwrap();
        let sources: [&[u32]; 3] = [&[5, 6, 7, 8, 9, 10], &[11, 12], &[13, 14, 15, 16]];
        let targets: [&[u32]; 3] = [&[4, 5], &[6, 7, 8, 9, 10], &[11]];
        let pairs: Vec<(&[u32], &[u32])> = sources.iter().copied().zip(targets.iter().copied()).collect();
        let batch = Batch::new(&pairs, vec![0, 1, 2], config.special, &Device::Cpu).unwrap();
        let memory = m.encode(&batch.src, &batch.src_mask).unwrap();
        let logits = m.decode(&batch.tgt_in, &memory).unwrap();
        let batched_greedy = greedy(&m, &memory, 12).unwrap();
        for (i, pair) in pairs.iter().enumerate() {
            let alone = Batch::new(&[*pair], vec![0], config.special, &Device::Cpu).unwrap();
            let mem = m.encode(&alone.src, &alone.src_mask).unwrap();
            let l = m.decode(&alone.tgt_in, &mem).unwrap();
            let t = pair.1.len() + 1;
            let d = max_diff(&l.i(0).unwrap(), &logits.i((i, ..t)).unwrap());
            assert!(d <= 1e-5, "{placement:?}: sentence {i} logits differ by {d} in the batch");
            let s = max_diff(&mem.states.i(0).unwrap(), &memory.states.i((i, ..pair.0.len() + 1)).unwrap());
            assert!(s <= 1e-5, "{placement:?}: sentence {i} memory differs by {s}");
            assert_eq!(greedy(&m, &mem, 12).unwrap()[0], batched_greedy[i], "{placement:?}: sentence {i} greedy");
        }
    }
}

#[test]
fn beam_grouped_steps_share_cross_attention_and_reorder_correctly() {
    let m = model(&tiny_config(NormPlacement::Pre), DType::F32).model;
    let src = ids(&[&[5, 6, 7, 2], &[8, 9, 10, 2]]);
    let memory = m.encode(&src, &ones_mask(2, 4)).unwrap();
    // 3 rows per source: rows 0..3 read source 0, rows 3..6 source 1
    let mut grouped = m.start(&memory, 3).unwrap();
    assert_eq!(grouped.cross_memory().sources().unwrap(), 2, "cross K/V are held once per source");
    let first = Tensor::new(&[1u32; 6], &Device::Cpu).unwrap();
    let second = Tensor::new(&[11u32, 12, 13, 14, 15, 16], &Device::Cpu).unwrap();
    m.decode_step(&first, &mut grouped).unwrap();
    m.decode_step(&second, &mut grouped).unwrap();
    // new row i continues old row order[i] (within its source)
    let order = [2u32, 2, 0, 4, 3, 3];
    grouped.reorder(&order).unwrap();
    let third = Tensor::new(&[17u32, 18, 19, 20, 21, 22], &Device::Cpu).unwrap();
    let got = m.decode_step(&third, &mut grouped).unwrap();
    assert_eq!(grouped.cross_memory().sources().unwrap(), 2, "reorder must not copy cross K/V per row");

    // Reference: each row decoded alone with the history it was reordered to.
    let second_v = second.to_vec1::<u32>().unwrap();
    let third_v = third.to_vec1::<u32>().unwrap();
    for row in 0..6 {
        let source = row / 3;
        let src_row = ids(&[&src.i(source).unwrap().to_vec1::<u32>().unwrap()]);
        let mem = m.encode(&src_row, &ones_mask(1, 4)).unwrap();
        let tgt = ids(&[&[1, second_v[order[row] as usize], third_v[row]]]);
        let want = m.decode(&tgt, &mem).unwrap();
        let d = max_diff(&got.i(row).unwrap(), &want.i((0, 2)).unwrap());
        assert!(d <= 1e-5, "row {row} differs by {d}");
    }
    assert!(grouped.reorder(&[3, 0, 0, 3, 3, 3]).is_err(), "a row may not take another source's history");
}

#[test]
fn sentences_hold_as_many_rows_as_they_need_and_each_row_decodes_as_alone() {
    let m = model(&tiny_config(NormPlacement::Pre), DType::F32).model;
    // source 1 is shorter: its memory is cut to its own 3 positions
    let src = ids(&[&[5, 6, 7, 2], &[8, 9, 2, 0]]);
    let mask = Tensor::new(&[[1u8, 1, 1, 1], [1, 1, 1, 0]], &Device::Cpu).unwrap();
    let memory = m.encode(&src, &mask).unwrap();
    let mut state = m.start(&memory, 3).unwrap();
    assert!(state.rows_can_vary(), "the CPU step kernels hold memories per source");
    // one row per source to start with (a beam's first step), then 2 and 3 rows
    state.regroup(&[0, 3], &[1, 1]).unwrap();
    m.decode_step(&Tensor::new(&[1u32, 1], &Device::Cpu).unwrap(), &mut state).unwrap();
    state.regroup(&[0, 0, 1, 1, 1], &[2, 3]).unwrap();
    assert_eq!(state.rows_of(), [2, 3]);
    let second = [11u32, 12, 13, 14, 15];
    m.decode_step(&Tensor::new(&second[..], &Device::Cpu).unwrap(), &mut state).unwrap();
    // new row i continues old row order[i], within its source
    let order = [1u32, 1, 4, 2, 3];
    state.regroup(&order, &[2, 3]).unwrap();
    let third = [17u32, 18, 19, 20, 21];
    let got = m.decode_step(&Tensor::new(&third[..], &Device::Cpu).unwrap(), &mut state).unwrap();
    for row in 0..5 {
        let (source, len) = if row < 2 { (0, 4) } else { (1, 3) };
        let alone = ids(&[&src.i(source).unwrap().to_vec1::<u32>().unwrap()[..len]]);
        let mem = m.encode(&alone, &ones_mask(1, len)).unwrap();
        let want = m.decode(&ids(&[&[1, second[order[row] as usize], third[row]]]), &mem).unwrap();
        let d = max_diff(&got.i(row).unwrap(), &want.i((0, 2)).unwrap());
        assert!(d <= 1e-5, "row {row} differs by {d}");
    }
    assert!(state.regroup(&[0, 1, 1, 2, 3], &[2, 3]).is_err(), "a row may not take another source's history");
    assert!(state.regroup(&[0, 1, 2, 3], &[2, 3]).is_err(), "one index per new row");
    assert!(state.regroup(&[2, 3, 4], &[0, 3]).is_err(), "every source keeps a row");
    // the reference kernels hold one batched memory: every source keeps its group
    let ctx = transduce::model::Ctx::eval().with_kernels(transduce::kernels::Kernels::Reference);
    let mut batched = m.start_with(&memory, 3, &ctx).unwrap();
    assert!(!batched.rows_can_vary());
    assert!(batched.regroup(&[0, 3], &[1, 1]).is_err());
    batched.regroup(&[1, 0, 2, 3, 4, 5], &[3, 3]).unwrap();
}

#[test]
fn recorded_attention_is_causal_and_normalised() {
    use transduce::model::{Ctx, Record};
    let m = model(&tiny_config(NormPlacement::Pre), DType::F32).model;
    let src = ids(&[&[5, 6, 7, 2, 0]]);
    let mask = Tensor::new(&[[1u8, 1, 1, 1, 0]], &Device::Cpu).unwrap();
    let memory = m.encode_with(&src, &mask, Record::Probabilities, &Ctx::eval()).unwrap();
    assert_eq!(memory.attention.len(), 2);
    let out = m.decode_with(&ids(&[&[1, 8, 9, 10]]), None, &memory, Record::Probabilities, &Ctx::eval()).unwrap();
    assert_eq!(out.attention.len(), 2);
    for layer in &out.attention {
        let sa = layer.self_attn.i(0).unwrap().to_vec3::<f32>().unwrap();
        for head in &sa {
            for (i, row) in head.iter().enumerate() {
                assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
                assert!(row[i + 1..].iter().all(|&p| p == 0.0), "weight above the diagonal: {row:?}");
            }
        }
        let ca = layer.cross_attn.i(0).unwrap().to_vec3::<f32>().unwrap();
        for row in ca.iter().flatten() {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            assert_eq!(row[4], 0.0, "padding must get no attention");
        }
    }
}

#[test]
fn target_padding_mask_hides_masked_target_keys() {
    use transduce::model::{Ctx, Record};
    let m = model(&tiny_config(NormPlacement::Pre), DType::F32).model;
    let memory = m.encode(&ids(&[&[5, 6, 7, 2]]), &ones_mask(1, 4)).unwrap();
    // position 2 is masked as padding: changing its token must not change later outputs
    let mask = Tensor::new(&[[1u8, 1, 0, 1, 1]], &Device::Cpu).unwrap();
    let run = |tgt: &[u32]| {
        let out = m.decode_with(&ids(&[tgt]), Some(&mask), &memory, Record::Nothing, &Ctx::eval()).unwrap();
        out.hidden
    };
    let a = run(&[1, 8, 9, 10, 11]);
    let b = run(&[1, 8, 20, 10, 11]);
    let d = max_diff(&a.i((.., 3..)).unwrap(), &b.i((.., 3..)).unwrap());
    assert!(d <= 1e-6, "masked target key leaked into later positions: {d}");
    let unmasked = m.decode(&ids(&[&[1, 8, 9, 10, 11]]), &memory).unwrap();
    let unmasked_b = m.decode(&ids(&[&[1, 8, 20, 10, 11]]), &memory).unwrap();
    assert!(max_diff(&unmasked.i((.., 3..)).unwrap(), &unmasked_b.i((.., 3..)).unwrap()) > 1e-4);
}

#[test]
fn dropout_is_active_only_in_training() {
    use transduce::kernels::Kernels;
    use transduce::model::Ctx;
    let mut config = tiny_config(NormPlacement::Pre);
    config.dropout = transduce::model::config::Dropout::uniform(0.3);
    let m = model(&config, DType::F32).model;
    let src = ids(&[&[5, 6, 7, 2]]);
    let tgt = ids(&[&[1, 8, 9]]);
    for kernels in [Kernels::Fused, Kernels::Reference] {
        let run = |ctx: &Ctx| m.forward(&src, &ones_mask(1, 4), &tgt, ctx).unwrap();
        let eval = run(&Ctx::eval().with_kernels(kernels));
        assert_eq!(
            max_diff(&eval, &run(&Ctx::eval().with_kernels(kernels))),
            0.0,
            "{kernels:?}: eval is deterministic"
        );
        let train = run(&Ctx::train(1).with_kernels(kernels));
        assert!(max_diff(&eval, &train) > 1e-3, "{kernels:?}: dropout should change training outputs");
        let again = run(&Ctx::train(1).with_kernels(kernels));
        assert_eq!(max_diff(&train, &again), 0.0, "{kernels:?}: the same seed gives the same masks");
    }
}

#[test]
fn source_word_dropout_zeroes_whole_source_tokens_in_training_only() {
    use candle_core::IndexOp;
    use transduce::kernels::Kernels;
    use transduce::model::Ctx;
    let mut config = tiny_config(NormPlacement::Pre);
    config.dropout =
        transduce::model::config::Dropout { source_words: 0.5, ..transduce::model::config::Dropout::uniform(0.0) };
    let m = model(&config, DType::F32).model;
    let row: Vec<u32> = (0..20).map(|i| 4 + i % 11).collect();
    let src = ids(&[&row, &row]);
    let embeddings = &m.encoder.embeddings;
    let positions = embeddings.positions.as_ref().unwrap().narrow(0, 0, 20).unwrap().unsqueeze(0).unwrap();
    let eval = embeddings.forward(&src, 0, &Ctx::eval()).unwrap();
    let tokens = eval.broadcast_sub(&positions).unwrap().to_vec3::<f32>().unwrap();
    for kernels in [Kernels::Fused, Kernels::Reference] {
        let train = embeddings.forward(&src, 0, &Ctx::train(3).with_kernels(kernels)).unwrap();
        let dropped = train.broadcast_sub(&positions).unwrap().to_vec3::<f32>().unwrap();
        let (mut zeroed, mut kept) = (0, 0);
        for (b, rows) in dropped.iter().enumerate() {
            for (t, values) in rows.iter().enumerate() {
                let token = &tokens[b][t];
                if values.iter().all(|v| v.abs() < 1e-5) {
                    zeroed += 1;
                } else {
                    // kept whole, scaled by 1 / (1 - 0.5)
                    let off = values.iter().zip(token).map(|(v, x)| (v - 2.0 * x).abs()).fold(0f32, f32::max);
                    assert!(off < 1e-4, "{kernels:?}: token ({b}, {t}) is neither dropped nor kept whole: {off}");
                    kept += 1;
                }
            }
        }
        assert!(zeroed >= 5 && kept >= 5, "{kernels:?}: {zeroed} dropped and {kept} kept of 40 at p = 0.5");
        assert!(max_diff(&train.i(0).unwrap(), &train.i(1).unwrap()) > 1e-3, "{kernels:?}: one mask per sentence");
    }
    // the target side drops nothing
    let tgt = ids(&[&row]);
    let decoder_eval = m.decoder.embeddings.forward(&tgt, 0, &Ctx::eval()).unwrap();
    let decoder_train = m.decoder.embeddings.forward(&tgt, 0, &Ctx::train(3)).unwrap();
    assert_eq!(max_diff(&decoder_eval, &decoder_train), 0.0);
}

#[test]
fn positions_beyond_max_positions_are_an_error_not_a_panic() {
    let m = model(&tiny_config(NormPlacement::Pre), DType::F32).model;
    let long: Vec<u32> = (0..45).map(|i| 4 + i % 10).collect();
    let err = m.encode(&ids(&[&long]), &ones_mask(1, 45)).unwrap_err().to_string();
    assert!(err.contains("max_positions 40"), "{err}");
    // greedy decoding stops at max_positions instead of failing
    let memory = m.encode(&ids(&[&[5, 6, 2]]), &ones_mask(1, 3)).unwrap();
    let out = greedy(&m, &memory, 1000).unwrap();
    assert!(out[0].len() <= 40);
}

#[test]
fn sinusoid_layouts_put_sin_and_cos_where_each_convention_expects() {
    use transduce::model::config::Positions;
    use transduce::model::embedding::sinusoids;
    let inter = sinusoids(3, 8, Positions::Sinusoidal, DType::F32, &Device::Cpu).unwrap().to_vec2::<f32>().unwrap();
    let halves =
        sinusoids(3, 8, Positions::SinusoidalHalves, DType::F32, &Device::Cpu).unwrap().to_vec2::<f32>().unwrap();
    assert_eq!(inter[0], vec![0., 1., 0., 1., 0., 1., 0., 1.]);
    assert_eq!(halves[0], vec![0., 0., 0., 0., 1., 1., 1., 1.]);
    // position 2, frequency index 1: angle 2 / 10000^(2/8)
    let angle = 2.0f64 / 10000f64.powf(0.25);
    assert!((inter[2][2] as f64 - angle.sin()).abs() < 1e-6 && (inter[2][3] as f64 - angle.cos()).abs() < 1e-6);
    assert!((halves[2][1] as f64 - angle.sin()).abs() < 1e-6 && (halves[2][5] as f64 - angle.cos()).abs() < 1e-6);
}

#[test]
fn releasing_the_weights_of_an_inference_model_changes_no_output() {
    use transduce::kernels::Kernels;
    use transduce::model::Ctx;
    let mut m = model(&tiny_config(NormPlacement::Pre), DType::F32).model;
    let src = ids(&[&[5, 6, 7, 2], &[8, 9, 2, 0]]);
    let mask = Tensor::new(&[[1u8, 1, 1, 1], [1, 1, 1, 0]], &Device::Cpu).unwrap();
    let tgt = ids(&[&[1, 8, 9], &[1, 10, 11]]);
    let reference = m.forward(&src, &mask, &tgt, &Ctx::eval().with_kernels(Kernels::Reference)).unwrap();
    m.prepare_inference().unwrap();
    let fused = m.forward(&src, &mask, &tgt, &Ctx::eval()).unwrap();
    let memory = m.encode(&src, &mask).unwrap();
    let greedy_before = greedy(&m, &memory, 8).unwrap();
    m.release_weights().unwrap();
    // the packed copy computes as before, and the reference path rebuilds the exact weights
    assert_eq!(max_diff(&m.forward(&src, &mask, &tgt, &Ctx::eval()).unwrap(), &fused), 0.0);
    let rebuilt = m.forward(&src, &mask, &tgt, &Ctx::eval().with_kernels(Kernels::Reference)).unwrap();
    assert_eq!(max_diff(&rebuilt, &reference), 0.0);
    assert_eq!(greedy(&m, &m.encode(&src, &mask).unwrap(), 8).unwrap(), greedy_before);
    // a released model cannot train
    let err = m.forward(&src, &mask, &tgt, &Ctx::train(1)).unwrap_err().to_string();
    assert!(err.contains("released"), "{err}");
}

#[test]
fn memories_projected_per_source_equal_the_padded_batch_projection_cut() {
    use transduce::model::{CrossMemory, Ctx};
    for placement in PLACEMENTS {
        let mut m = model(&tiny_config(placement), DType::F32).model;
        m.prepare_inference().unwrap();
        for precision in ["f32", "int8"] {
            if precision == "int8" {
                m.quantize_int8().unwrap();
            }
            // three sources of 6, 2 and 4 positions (the second and third padded)
            let sources: [&[u32]; 3] = [&[5, 6, 7, 8, 9], &[11], &[13, 14, 15]];
            let (src, mask) = Batch::sources(&sources, m.config.special, &Device::Cpu).unwrap();
            let memory = m.encode(&src, &mask).unwrap();
            let ctx = Ctx::eval();
            let kv = m.decoder.cross_kv(&memory.states, &ctx).unwrap();
            let cut = CrossMemory::per_source(&kv, &memory.bias).unwrap();
            let layers: Vec<_> = m.decoder.layers.iter().map(|l| &l.cross_attn).collect();
            let projected = CrossMemory::project_per_source(&memory.states, &memory.bias, &layers, &ctx).unwrap();
            let (CrossMemory::PerSource(cut), CrossMemory::PerSource(projected)) = (cut, projected) else {
                panic!("per-source memories expected")
            };
            assert_eq!(projected.iter().map(|s| s.len()).collect::<Vec<_>>(), [6, 2, 4], "{placement:?}");
            // the same values to the bit: each row is projected alone either way
            assert_eq!(projected, cut, "{placement:?} {precision}");
        }
    }
}

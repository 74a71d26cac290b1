//! Greedy decoding for a batch, stopping per sentence at end-of-sentence.

use candle_core::{Result, Tensor, D};

use crate::model::{Memory, Seq2Seq};

/// Decodes the most probable token at each step for every sentence of `memory`.
///
/// Each output stops at `eos` (not included) or after `max_len` tokens; decoding stops when
/// every sentence has stopped. Returns one id sequence per source row, in order.
pub fn greedy(model: &Seq2Seq, memory: &Memory, max_len: usize) -> Result<Vec<Vec<u32>>> {
    let special = model.config.special;
    let rows = memory.states.dim(0)?;
    let max_len = max_len.min(model.config.max_positions);
    let device = memory.states.device();
    let mut state = model.start(memory, 1)?;
    let mut outputs = vec![Vec::new(); rows];
    let mut done = vec![false; rows];
    let mut last = vec![special.decoder_start; rows];
    for _ in 0..max_len {
        let logits = model.decode_step(&Tensor::new(last.as_slice(), device)?, &mut state)?;
        let next = logits.argmax(D::Minus1)?.to_vec1::<u32>()?;
        for (row, &token) in next.iter().enumerate() {
            if done[row] {
                last[row] = special.pad;
                continue;
            }
            if token == special.eos {
                done[row] = true;
            } else {
                outputs[row].push(token);
            }
            last[row] = token;
        }
        if done.iter().all(|&d| d) {
            break;
        }
    }
    Ok(outputs)
}

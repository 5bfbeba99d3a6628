#pragma once
// Recurrent layers (issue 15): RNN, LSTM, GRU and their cells.

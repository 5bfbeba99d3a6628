#pragma once
// Convolutional layers (being written: issue 14).
